//! Manifests: every file in `train/` has a `<file>.manifest.json` beside it
//! that says what it holds — the formatter with its filters, the verdicts
//! used, the row shape and thinking mode, the row and prompt counts, and
//! when it was written — so a later `rsr format` with other filters cannot
//! leave a file that silently means something else, and `rsr export` can
//! use exactly what `rsr format` used.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ExportFormat, FormatterConfig, ReasoningMode};

/// What a training file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The file, relative to the work dir (`train/sft.jsonl`).
    pub file: String,
    /// The formatter and its filters, as configured.
    pub formatter: FormatterConfig,
    /// `inline` (verdicts given while sampling) or a scores label.
    pub scores: String,
    /// Row shape.
    pub format: ExportFormat,
    /// Thinking handling.
    pub reasoning: ReasoningMode,
    /// Rows written.
    pub rows: u64,
    /// Prompts with at least one row.
    pub prompts: u64,
    /// Prompts with rollouts before the filters.
    pub prompts_in: u64,
    /// Of which the filters dropped.
    pub dropped_by_filter: u64,
    /// When it was written (RFC 3339 with milliseconds; `rsr export` takes
    /// the newest manifest of a name).
    pub written_at: String,
    /// The rsr that wrote it.
    pub rsr_version: String,
    /// Whether sampling had unfinished shards when it was written (a run
    /// stopped at a budget, say): its rows come from the prompts finished
    /// so far, and a resume that finishes the run writes it again.
    #[serde(default)]
    pub partial: bool,
    /// Whether rows carry their prompt id and rollout indices.
    #[serde(default)]
    pub with_ids: bool,
    /// Whether the rows are preference pairs (else SFT rows).
    #[serde(default)]
    pub pairs: bool,
    /// The command that wrote it (run where it ran, it writes it again).
    #[serde(default)]
    pub command: String,
}

/// The file name of a formatter's output: `<name>.jsonl` for the default
/// shape (`trl`), `<name>.<shape>.jsonl` for the other JSON Lines shapes,
/// `<name>.parquet` for Parquet.
pub fn file_name(name: &str, format: ExportFormat) -> String {
    match format {
        ExportFormat::Trl => format!("{name}.jsonl"),
        ExportFormat::Parquet => format!("{name}.parquet"),
        other => format!("{name}.{}.jsonl", config_name(other)),
    }
}

/// A config value's spelling in the config file (`think_tags`,
/// `trl_prompt_completion`), as its serde attributes give it.
fn config_name(value: impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// `<file>.manifest.json`.
pub fn path_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

impl Manifest {
    /// The manifest of `file` (as the card and `rsr export` name it),
    /// written by `formatter` over `label`'s verdicts (none: inline) in
    /// `options`' shape, as `report` counted; `partial` when sampling was
    /// not finished. The command is this process's.
    pub fn of(
        file: String,
        formatter: &super::Formatter,
        label: Option<&str>,
        options: crate::config::ExportConfig,
        report: &super::FormatReport,
        partial: bool,
    ) -> Self {
        Self {
            file,
            formatter: FormatterConfig {
                name: Some(formatter.name.clone()),
                ..formatter.config.clone()
            },
            scores: label.unwrap_or("inline").to_string(),
            format: options.format,
            reasoning: options.reasoning,
            rows: report.rows,
            prompts: report.prompts_out,
            prompts_in: report.prompts_in,
            dropped_by_filter: report.dropped_by_filter,
            written_at: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            rsr_version: env!("CARGO_PKG_VERSION").to_string(),
            partial,
            with_ids: options.with_ids,
            pairs: report.pairs,
            command: super::card::this_command(),
        }
    }

    /// Reads the manifest of `file`, if it has one that parses.
    pub fn read(file: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path_of(file)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Every manifest in `dir` (a work dir's `train/`), by file name.
    pub fn all_in(dir: &Path) -> Vec<Self> {
        let mut out: Vec<Self> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let name = p.file_name()?.to_str()?;
                let file = name.strip_suffix(".manifest.json")?;
                Self::read(&dir.join(file))
            })
            .collect();
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }

    /// Writes it beside `file`, atomically.
    pub fn write(&self, file: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serializes");
        text.push('\n');
        crate::store::write_atomic(path_of(file), text.as_bytes())
    }

    /// `replaced FILE: a -> b rows`, with what changed when the selection,
    /// the verdicts or the thinking differ from `previous`.
    pub fn replaced(&self, previous: &Manifest) -> String {
        let same = previous.formatter == self.formatter
            && previous.scores == self.scores
            && previous.reasoning == self.reasoning;
        let describe = |m: &Manifest| {
            format!(
                "{}, {} verdicts, thinking {}",
                m.filters(),
                m.scores,
                config_name(m.reasoning)
            )
        };
        let mut line = format!(
            "replaced {}: {} -> {} rows",
            self.file, previous.rows, self.rows
        );
        if !same {
            line.push_str(&format!(
                " (was: {}; now: {})",
                describe(previous),
                describe(self)
            ));
        }
        line
    }

    /// The formatter's filters in one line (`max_pass_rate=0.5`), or
    /// `no filters`.
    pub fn filters(&self) -> String {
        let f = &self.formatter;
        let mut parts = Vec::new();
        if let Some(v) = f.min_pass_rate {
            parts.push(format!("min_pass_rate={v}"));
        }
        if let Some(v) = f.max_pass_rate {
            parts.push(format!("max_pass_rate={v}"));
        }
        if let Some(w) = &f.filter {
            parts.push(format!("where {w}"));
        }
        if let Some(m) = f.max_similarity {
            parts.push(format!("max_similarity={m}"));
        }
        if parts.is_empty() {
            "no filters".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_default_shapes_are_in_the_file_name() {
        assert_eq!(file_name("sft", ExportFormat::Trl), "sft.jsonl");
        assert_eq!(
            file_name("sft", ExportFormat::Sharegpt),
            "sft.sharegpt.jsonl"
        );
        assert_eq!(
            file_name("dpo", ExportFormat::TrlPromptCompletion),
            "dpo.trl_prompt_completion.jsonl"
        );
        assert_eq!(file_name("sft", ExportFormat::Parquet), "sft.parquet");
        assert_eq!(
            path_of(Path::new("train/sft.jsonl")),
            Path::new("train/sft.jsonl.manifest.json")
        );
    }
}
