//! `rsr export`: any formatter's rows in any trainer shape, to any file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

use crate::config::{Config, ExportFormat, ReasoningMode};
use crate::formatter::manifest::Manifest;
use crate::formatter::{self, Formatter};

use crate::hygiene::Exclusion;
use crate::store::WorkDir;

use super::common::{check_overrides, open_saved};

/// Write one formatter's rows in a trainer's shape (no inference)
///
/// Runs the formatter named NAME (its `name`, or its type) of WORK_DIR's
/// config, with any formatter.* / export.* overrides, and writes its rows to
/// --output in --format (default export.format), atomically.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    pub(super) work_dir: PathBuf,
    /// formatter.* and export.* overrides.
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// The formatter to export (default: the first).
    #[arg(long, value_name = "NAME")]
    formatter: Option<String>,
    /// Row shape (default: from --output's extension: .parquet writes the
    /// TRL shape as Parquet, .jsonl export.format).
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    /// Thinking handling (default: export.reasoning).
    #[arg(long, value_enum)]
    reasoning: Option<ReasoningMode>,
    /// Add each row's prompt id and rollout_idx (default: export.with_ids).
    #[arg(long)]
    with_ids: bool,
    /// Output file.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Use the verdicts of scores/LABEL/ instead of the inline ones.
    #[arg(long, value_name = "LABEL")]
    scores: Option<String>,
}

/// The shape to write to `output`: `--format` when given (it must agree
/// with a `.parquet` or `.jsonl`/`.json` extension), else the extension
/// decides the file type (`.parquet`: the TRL shape as Parquet; JSON Lines:
/// `export.format`, or `trl` when that is `parquet`), else `export.format`.
fn shape_for(
    output: &std::path::Path,
    given: Option<ExportFormat>,
    configured: ExportFormat,
) -> anyhow::Result<ExportFormat> {
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let parquet_file = match ext.as_deref() {
        Some("parquet" | "pq") => Some(true),
        Some("jsonl" | "ndjson" | "json") => Some(false),
        _ => None,
    };
    match (given, parquet_file) {
        (Some(f), Some(p)) if (f == ExportFormat::Parquet) != p => bail!(
            "--format {} writes {}, which contradicts the extension of {}: drop --format (the extension decides) or rename the file",
            f.to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_string()),
            if f == ExportFormat::Parquet {
                "Parquet"
            } else {
                "JSON Lines"
            },
            output.display()
        ),
        (Some(f), _) => Ok(f),
        (None, Some(true)) => Ok(ExportFormat::Parquet),
        (None, Some(false)) if configured == ExportFormat::Parquet => Ok(ExportFormat::Trl),
        (None, _) => Ok(configured),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    check_overrides(
        "export",
        &args.overrides,
        &["formatter", "export.", "card."],
    )?;
    let (wd, config, _) = open_saved(&args.work_dir, &args.overrides, &[])?;
    let (formatter, scores) = chosen_formatter(&args, &wd, &config)?;
    let formatter = formatter.scoring(
        crate::store::rollout::score_meaning(wd.root(), scores.as_deref()),
        scores.as_deref().unwrap_or("inline"),
    )?;
    let options = crate::config::ExportConfig {
        format: shape_for(&args.output, args.format, config.export.format)?,
        reasoning: args.reasoning.unwrap_or(config.export.reasoning),
        with_ids: args.with_ids || config.export.with_ids,
    };
    let dir = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let report =
        formatter::write_formatter(&wd, &formatter, scores.as_deref(), &args.output, options)
            .await?;
    tracing::info!(
        "{}: {} rows from {} prompts -> {}",
        report.name,
        report.rows,
        report.prompts_out,
        report.path.display()
    );
    let written = Written {
        formatter: &formatter,
        scores: scores.as_deref(),
        options,
        report: &report,
    };
    write_manifest_and_card(&args, &wd, &config, &dir, written).await
}

/// The formatter to export and the verdicts it reads: what `rsr format`
/// last wrote under the name asked for, unless `formatter.*` overrides
/// here say otherwise (export and `train/` then agree); else the config's.
fn chosen_formatter(
    args: &Args,
    wd: &WorkDir,
    config: &Config,
) -> anyhow::Result<(Formatter, Option<String>)> {
    let base = std::env::current_dir()?;
    let formatters = config
        .formatter
        .iter()
        .map(|f| {
            Formatter::load(f, &base).map(|f| f.excluding(Exclusion::from_config(&config.data)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = match &args.formatter {
        Some(n) => n.clone(),
        None => formatters
            .first()
            .context("the config has no formatter")?
            .name
            .clone(),
    };
    // What `rsr format` last wrote under this name, unless formatter.*
    // overrides here say otherwise: export and train/ then agree.
    let overridden = args.overrides.iter().any(|o| o.starts_with("formatter"));
    let written = Manifest::all_in(&crate::store::train_dir(wd.root()))
        .into_iter()
        .filter(|m| m.formatter.name.as_deref() == Some(name.as_str()))
        .max_by(|a, b| a.written_at.cmp(&b.written_at));
    let chosen = match (written, overridden) {
        (Some(m), false) => {
            tracing::info!(
                "exporting `{name}` as rsr format last wrote it to {} ({}, {} verdicts)",
                m.file,
                m.filters(),
                m.scores
            );
            let scores = args
                .scores
                .clone()
                .or_else(|| (m.scores != "inline").then(|| m.scores.clone()));
            (
                Formatter::load(&m.formatter, &base)?
                    .excluding(Exclusion::from_config(&config.data)),
                scores,
            )
        }
        _ => {
            let f = formatters
                .into_iter()
                .find(|f| f.name == name)
                .with_context(|| {
                    format!(
                        "no formatter named `{name}` in the config ({}) nor in {}/train/; format it first (rsr format {} formatter.0.type=…) or name it with formatter.0.name=",
                        config
                            .formatter
                            .iter()
                            .map(|f| f.name.clone().unwrap_or_else(|| f.kind.clone()))
                            .collect::<Vec<_>>()
                            .join(", "),
                        wd.root().display(),
                        wd.root().display()
                    )
                })?;
            (f, args.scores.clone())
        }
    };
    Ok(chosen)
}

/// What was exported, for its manifest.
struct Written<'a> {
    formatter: &'a Formatter,
    scores: Option<&'a str>,
    options: crate::config::ExportConfig,
    report: &'a formatter::FormatReport,
}

/// The file's manifest and the directory's dataset card, unless the
/// directory has a README.md of its own.
async fn write_manifest_and_card(
    args: &Args,
    wd: &WorkDir,
    config: &Config,
    dir: &Path,
    w: Written<'_>,
) -> anyhow::Result<()> {
    if formatter::card::may_write(dir) {
        let name = args
            .output
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let manifest = Manifest::of(
            name,
            w.formatter,
            w.scores,
            w.options,
            w.report,
            formatter::sampling_unfinished(wd),
        );
        let path = formatter::manifest::path_of(&args.output);
        manifest
            .write(&args.output)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(card) = formatter::card::write(wd, config, dir).await? {
            tracing::info!("dataset card: {}", card.display());
        }
    } else {
        tracing::warn!(
            "{}/README.md is not rsr's: no dataset card or manifest written beside {} (export into a directory of its own, -o DIR/{}, to get them)",
            dir.display(),
            args.output.display(),
            args.output
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_extension_decides_unless_the_format_is_given_and_they_must_agree() {
        let shape = |file: &str, given, configured| shape_for(Path::new(file), given, configured);
        use ExportFormat::*;
        assert_eq!(shape("a.parquet", None, Trl).unwrap(), Parquet);
        assert_eq!(shape("a.jsonl", None, Sharegpt).unwrap(), Sharegpt);
        assert_eq!(shape("a.jsonl", None, Parquet).unwrap(), Trl);
        assert_eq!(shape("a.out", None, Alpaca).unwrap(), Alpaca);
        assert_eq!(shape("a.jsonl", Some(Alpaca), Trl).unwrap(), Alpaca);
        assert_eq!(shape("a.PARQUET", Some(Parquet), Trl).unwrap(), Parquet);
        let err = shape("a.jsonl", Some(Parquet), Trl)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--format parquet writes Parquet"), "{err}");
        assert!(shape("a.parquet", Some(Sharegpt), Trl).is_err());
    }
}
