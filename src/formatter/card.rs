//! The dataset card written beside training files: a Hugging Face
//! `README.md` whose YAML front matter holds the license (the user's, never
//! guessed), languages, task categories, tags, size category, source
//! datasets, one config per training file with its `data_files`, and
//! `dataset_info` (features and row counts); and whose body says where the
//! prompts came from, which model wrote the responses and how, what
//! checked and filtered them, the hygiene steps, the count from prompts to
//! rows, tokens and cost, and the command that rebuilds each file. The
//! work dir's frozen config goes beside it as `rsr.config.yaml`.
//!
//! A card describes every training file in its directory that has a
//! manifest (`<file>.manifest.json`), so exporting a second file into the
//! same directory adds it to the card. A `README.md` there that rsr did not
//! write is never replaced.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::manifest::Manifest;
use crate::config::{Config, ExportFormat, ReasoningMode};
use crate::store::WorkDir;

/// The card's file name.
pub const CARD_FILE: &str = "README.md";
/// The frozen config beside the card.
pub const CONFIG_FILE: &str = "rsr.config.yaml";
/// The line that marks a card as rsr's (so rsr may replace it).
const MARK: &str = "<!-- dataset card written by rsr; rsr format/export rewrite it -->";

/// Errors writing a card.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// A file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The counts cannot be read from the work dir.
    #[error("cannot count the work dir's rollouts for the dataset card: {0}")]
    Sql(#[from] datafusion::error::DataFusionError),
}

/// The command line of this process, quoted for a POSIX shell.
pub fn this_command() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    shell_command("rsr", &args)
}

/// `program args…`, each word quoted for a POSIX shell when it needs it.
pub fn shell_command(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| shell_word(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `w` quoted for a POSIX shell when it needs it.
pub fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// Counts of the work dir that every file of a card shares.
#[derive(Debug, Clone, Default)]
struct Counts {
    prompts: u64,
    sampled_prompts: u64,
    rollouts: u64,
    valid: u64,
    truncated: u64,
    requests: u64,
    completion_tokens: u64,
    /// Counted only when prices are set (the request grouping it needs is
    /// the one costly query of a card).
    prompt_tokens: Option<u64>,
}

/// The counts of `wd` in one pass over narrow columns (part-file footers
/// for the row count); the prompt tokens, which need each request's rows
/// grouped, only when `priced`.
async fn counts(
    wd: &WorkDir,
    state: Option<&crate::store::RunState>,
    manifests: &[Manifest],
    priced: bool,
) -> Result<Counts, CardError> {
    let ctx = crate::sql::session(wd).await?;
    let mut c = Counts {
        prompts: state.map_or(0, |s| s.counters.prompts),
        requests: state.map_or(0, |s| s.counters.requests),
        // Prompts with rollouts, as every formatter counted them.
        sampled_prompts: manifests.iter().map(|m| m.prompts_in).max().unwrap_or(0),
        ..Counts::default()
    };
    if !ctx.table_exist("rollouts")? {
        return Ok(c);
    }
    let n = |row: &[Option<f64>], i: usize| row.get(i).copied().flatten().unwrap_or(0.0) as u64;
    let row = crate::sql::columns::one_row(
        &ctx,
        "SELECT count(*), count(*) FILTER (WHERE error IS NULL AND NOT truncated), \
           count(*) FILTER (WHERE truncated), sum(completion_tokens) FILTER (WHERE error IS NULL) \
         FROM rollouts",
    )
    .await?;
    (c.rollouts, c.valid, c.truncated, c.completion_tokens) =
        (n(&row, 0), n(&row, 1), n(&row, 2), n(&row, 3));
    if priced {
        // One request per prompt, step and time; its prompt tokens once.
        let spent = crate::sql::columns::one_row(
            &ctx,
            "SELECT count(*), sum(p) FROM ( \
               SELECT max(prompt_tokens) AS p FROM rollouts WHERE error IS NULL \
               GROUP BY id, step, created_at)",
        )
        .await?;
        c.requests = n(&spent, 0);
        c.prompt_tokens = Some(n(&spent, 1));
    }
    Ok(c)
}

/// Writes `dir/README.md` for every training file of `dir` that has a
/// manifest, and `dir/rsr.config.yaml`; returns the card's path, or `None`
/// when `dir` holds a `README.md` rsr did not write (left as it is, with a
/// warning).
pub async fn write(
    wd: &WorkDir,
    config: &Config,
    dir: &Path,
) -> Result<Option<PathBuf>, CardError> {
    let path = dir.join(CARD_FILE);
    if !may_write(dir) {
        tracing::warn!(
            "{} exists and was not written by rsr: no dataset card written (export into a directory of its own to get one)",
            path.display()
        );
        return Ok(None);
    }
    let manifests = Manifest::all_in(dir);
    let state = crate::store::RunState::load(&wd.state_path()).ok();
    let p = &config.pricing;
    let priced = p.input.is_some() && p.output.is_some();
    let counts = counts(wd, state.as_ref(), &manifests, priced).await?;
    let text = render(wd, config, &manifests, &counts);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CardError::Io { path, source }
    };
    crate::store::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
    let frozen = dir.join(CONFIG_FILE);
    let saved = wd.config_path();
    let yaml = std::fs::read(&saved).map_err(io(&saved))?;
    crate::store::write_atomic(&frozen, &yaml).map_err(io(&frozen))?;
    if config.card.license.is_none() {
        tracing::warn!(
            "{}: license `unknown`: set card.license (it depends on the model's terms and the prompts' license, e.g. apache-2.0, mit, cc-by-4.0, other)",
            path.display()
        );
    }
    Ok(Some(path))
}

/// Whether a card may be written in `dir`: it has no `README.md`, or one
/// rsr wrote.
pub fn may_write(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(CARD_FILE)).map_or(true, |t| t.contains(MARK))
}

/// A training file's name in the card's directory.
fn file_name(m: &Manifest) -> String {
    Path::new(&m.file)
        .file_name()
        .map_or_else(|| m.file.clone(), |n| n.to_string_lossy().into_owned())
}

/// A config name for a file: the formatter's name, made unique.
fn config_names(manifests: &[Manifest]) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    manifests
        .iter()
        .map(|m| {
            let base = m
                .formatter
                .name
                .clone()
                .unwrap_or_else(|| m.formatter.kind.clone());
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { base } else { format!("{base}_{n}") }
        })
        .collect()
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

fn string_feature(name: &str) -> Value {
    map(vec![("name", s(name)), ("dtype", s("string"))])
}

/// A list of chat turns with `keys` as text.
fn turns(name: &str, keys: &[&str]) -> Value {
    map(vec![
        ("name", s(name)),
        (
            "list",
            Value::Sequence(keys.iter().map(|k| string_feature(k)).collect()),
        ),
    ])
}

/// One turn with `keys` as text.
fn turn(name: &str, keys: &[&str]) -> Value {
    map(vec![
        ("name", s(name)),
        (
            "struct",
            Value::Sequence(keys.iter().map(|k| string_feature(k)).collect()),
        ),
    ])
}

/// The `dataset_info` features of a file.
fn features(m: &Manifest) -> Vec<Value> {
    let chat: &[&str] = if m.reasoning == ReasoningMode::Field {
        &["role", "content", "reasoning_content"]
    } else {
        &["role", "content"]
    };
    let mut out = Vec::new();
    // Parquet files always carry the prompt id.
    if m.with_ids || m.format == ExportFormat::Parquet {
        out.push(string_feature("id"));
    }
    match (m.format, m.pairs) {
        (ExportFormat::Trl | ExportFormat::Parquet, false) => out.push(turns("messages", chat)),
        (ExportFormat::TrlPromptCompletion, false) => {
            out.push(turns("prompt", chat));
            out.push(turns("completion", chat));
        }
        (ExportFormat::Trl | ExportFormat::TrlPromptCompletion | ExportFormat::Parquet, true) => {
            for name in ["prompt", "chosen", "rejected"] {
                out.push(turns(name, chat));
            }
        }
        (ExportFormat::Sharegpt, false) => out.push(turns("conversations", &["from", "value"])),
        (ExportFormat::Sharegpt, true) => {
            out.push(turns("conversations", &["from", "value"]));
            out.push(turn("chosen", &["from", "value"]));
            out.push(turn("rejected", &["from", "value"]));
        }
        (ExportFormat::Alpaca, pairs) => {
            out.push(string_feature("instruction"));
            out.push(string_feature("input"));
            if pairs {
                out.push(string_feature("chosen"));
                out.push(string_feature("rejected"));
            } else {
                out.push(string_feature("output"));
            }
            out.push(string_feature("system"));
            out.push(map(vec![
                ("name", s("history")),
                ("sequence", map(vec![("sequence", s("string"))])),
            ]));
        }
    }
    if m.with_ids {
        let (names, dtype): (&[&str], &str) = match (m.pairs, m.format) {
            (false, ExportFormat::Parquet) => (&["rollout_idx"], "uint64"),
            (false, _) => (&["rollout_idx"], "int64"),
            (true, ExportFormat::Parquet) => {
                (&["chosen_rollout_idx", "rejected_rollout_idx"], "uint64")
            }
            (true, _) => (&["chosen_rollout_idx", "rejected_rollout_idx"], "int64"),
        };
        for name in names {
            out.push(map(vec![("name", s(name)), ("dtype", s(dtype))]));
        }
    }
    out
}

/// Hugging Face's size category of `rows`.
fn size_category(rows: u64) -> &'static str {
    match rows {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        10_000_000..100_000_000 => "10M<n<100M",
        _ => "100M<n<1B",
    }
}

/// The card's text.
fn render(wd: &WorkDir, config: &Config, manifests: &[Manifest], c: &Counts) -> String {
    let card = &config.card;
    let names = config_names(manifests);
    let title = card.pretty_name.clone().unwrap_or_else(|| {
        wd.root().file_name().map_or_else(
            || "rsr dataset".into(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    let total_rows: u64 = manifests.iter().map(|m| m.rows).sum();
    let mut tags = vec!["rsr", "synthetic", "rejection-sampling"];
    for m in manifests {
        tags.push(if m.pairs { "dpo" } else { "sft" });
    }
    if manifests.iter().any(|m| m.reasoning != ReasoningMode::Drop) {
        tags.push("reasoning");
    }
    tags.sort();
    tags.dedup();
    let configs: Vec<Value> = manifests
        .iter()
        .zip(&names)
        .map(|(m, name)| {
            map(vec![
                ("config_name", s(name)),
                (
                    "data_files",
                    Value::Sequence(vec![map(vec![
                        ("split", s("train")),
                        ("path", s(&file_name(m))),
                    ])]),
                ),
            ])
        })
        .collect();
    let info: Vec<Value> = manifests
        .iter()
        .zip(&names)
        .map(|(m, name)| {
            map(vec![
                ("config_name", s(name)),
                ("features", Value::Sequence(features(m))),
                (
                    "splits",
                    Value::Sequence(vec![map(vec![
                        ("name", s("train")),
                        ("num_examples", Value::Number(m.rows.into())),
                    ])]),
                ),
            ])
        })
        .collect();
    let list = |v: &[String]| Value::Sequence(v.iter().map(|x| s(x)).collect());
    let mut front = vec![
        ("license", s(card.license.as_deref().unwrap_or("unknown"))),
        ("pretty_name", s(&title)),
        ("task_categories", list(&["text-generation".to_string()])),
        ("tags", Value::Sequence(tags.iter().map(|t| s(t)).collect())),
        (
            "size_categories",
            list(&[size_category(total_rows).to_string()]),
        ),
        ("configs", Value::Sequence(configs)),
        ("dataset_info", Value::Sequence(info)),
    ];
    if !card.language.is_empty() {
        front.insert(1, ("language", list(&card.language)));
    }
    if !card.source_datasets.is_empty() {
        front.insert(1, ("source_datasets", list(&card.source_datasets)));
    }
    let yaml = serde_yaml_ng::to_string(&map(front)).expect("front matter serializes");
    let mut out = format!("---\n{yaml}---\n{MARK}\n\n# {title}\n\n");
    body(&mut out, wd, config, manifests, &names, c);
    out
}

/// What the card's sections are written from.
#[derive(Clone, Copy)]
struct Sections<'a> {
    wd: &'a WorkDir,
    config: &'a Config,
    manifests: &'a [Manifest],
    names: &'a [String],
    counts: &'a Counts,
}

/// The card's text under its title: a line on how the data was made, then
/// one section after another.
fn body(
    out: &mut String,
    wd: &WorkDir,
    config: &Config,
    manifests: &[Manifest],
    names: &[String],
    c: &Counts,
) {
    let _ = writeln!(
        out,
        "Training data made by rejection sampling with rsr {}: every prompt was sampled \
         several times, every response scored by a verifier, and the files below keep the \
         responses that pass.\n",
        env!("CARGO_PKG_VERSION")
    );
    let sections = Sections {
        wd,
        config,
        manifests,
        names,
        counts: c,
    };
    sections.prompts(out);
    sections.responses(out);
    sections.verification(out);
    sections.hygiene(out);
    sections.funnel(out);
    sections.cost(out);
    sections.rebuilding(out);
    sections.license(out);
}

impl Sections<'_> {
    /// The `## Prompts` section: where the prompts came from.
    fn prompts(&self, out: &mut String) {
        let Self {
            config, counts: c, ..
        } = *self;
        let d = &config.data;
        let _ = writeln!(out, "## Prompts\n");
        let input = d
            .input_path
            .as_deref()
            .and_then(|p| p.file_name())
            .map_or_else(
                || "not recorded".into(),
                |n| n.to_string_lossy().into_owned(),
            );
        let _ = writeln!(out, "- Source file: `{input}`, {} prompts.", c.prompts);
        if !config.card.source_datasets.is_empty() {
            let _ = writeln!(
                out,
                "- Source datasets: {}.",
                config.card.source_datasets.join(", ")
            );
        }
        let transform = d
            .preprocess
            .transform
            .as_deref()
            .map_or_else(|| "none".into(), |t| t.display().to_string());
        let _ = writeln!(out, "- Transform: `{transform}`.");
        if let Some(limit) = d.limit {
            let _ = writeln!(out, "- Limited to the first {limit} rows.");
        }
    }

    /// The `## Responses` section: the model and how it sampled.
    fn responses(&self, out: &mut String) {
        let config = self.config;
        let sm = &config.sampler;
        let sa = &config.sampling;
        let _ = writeln!(out, "\n## Responses\n");
        let model = sm.model.as_deref().unwrap_or("not recorded");
        let _ = writeln!(out, "- Model: `{model}`.");
        match sm.model_path.as_deref() {
            Some(p) => {
                let _ = writeln!(out, "- Weights: `{}` (served by rsr).", p.display());
            }
            None => {
                let _ = writeln!(
                    out,
                    "- Revision: not recorded (rsr keeps the name the server gave; add the revision here if it matters)."
                );
            }
        }
        let _ = writeln!(
            out,
            "- Sampling: temperature {}, top_p {}, max_tokens {}; up to {} responses per prompt \
             in steps of {}{}.",
            sm.temperature,
            sm.top_p,
            sm.max_tokens,
            sa.max_rollouts,
            sa.step_size,
            if sa.early_stop {
                ", a prompt stopping early once every training file was satisfied"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "- Truncated responses (cut at max_tokens, or unclosed thinking) {}.",
            if sm.drop_truncated {
                "are never used"
            } else {
                "count as responses"
            }
        );
    }

    /// The `## Verification and filters` section: the verdicts and each file's thresholds and filters.
    fn verification(&self, out: &mut String) {
        let Self {
            wd,
            config,
            manifests,
            names,
            ..
        } = *self;
        let _ = writeln!(out, "\n## Verification and filters\n");
        let v = &config.verifier;
        let _ = writeln!(
            out,
            "- Verdicts while sampling: `{}`{}.",
            v.kind,
            if v.options.is_empty() {
                String::new()
            } else {
                format!(
                    " with options `{}`",
                    serde_json::Value::Object(v.options.clone())
                )
            }
        );
        for (m, name) in manifests.iter().zip(names) {
            let scores = if m.scores == "inline" {
                "the verdicts given while sampling".to_string()
            } else {
                let judge = crate::store::rollout::scores_verifier(wd.root(), &m.scores)
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default();
                format!("the scores labelled `{}`{judge}", m.scores)
            };
            let f = &m.formatter;
            let mut thresholds = Vec::new();
            if let Some(p) = f.pass_threshold {
                thresholds.push(format!("pass_threshold {p}"));
            }
            if let Some(p) = f.fail_threshold {
                thresholds.push(format!("fail_threshold {p}"));
            }
            if let Some(k) = f.k {
                thresholds.push(format!("k {k}"));
            }
            if let Some(mm) = f.min_margin {
                thresholds.push(format!("min_margin {mm}"));
            }
            let thresholds = if thresholds.is_empty() {
                "the label's own pass and fail scores".to_string()
            } else {
                thresholds.join(", ")
            };
            let _ = writeln!(
                out,
                "- `{name}` (`{}`, formatter `{}`): {scores}; {thresholds}; filters: {}.",
                file_name(m),
                f.kind,
                m.filters()
            );
        }
    }

    /// The `## Decontamination and deduplication` section.
    fn hygiene(&self, out: &mut String) {
        let wd = self.wd;
        let _ = writeln!(out, "\n## Decontamination and deduplication\n");
        let report: Option<crate::hygiene::Report> =
            std::fs::read_to_string(wd.hygiene_report_path())
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
        match report.filter(|r| r.checked()) {
            None => {
                let _ = writeln!(
                    out,
                    "Not performed: the prompts were not checked against benchmarks, nor for duplicates."
                );
            }
            Some(r) => {
                if r.benchmarks.is_empty() {
                    let _ = writeln!(out, "- Decontamination: not performed.");
                }
                for b in &r.benchmarks {
                    let _ = writeln!(
                        out,
                        "- Decontamination against `{}` ({} problems): {} prompts share a run of {} words.",
                        Path::new(&b.info.path).file_name().map_or_else(
                            || b.info.path.clone(),
                            |n| n.to_string_lossy().into_owned()
                        ),
                        b.info.problems,
                        b.prompts_flagged,
                        r.ngram
                    );
                }
                if r.dedup_mode == crate::config::DedupMode::Off {
                    let _ = writeln!(out, "- Deduplication: not performed.");
                } else {
                    let _ = writeln!(
                        out,
                        "- Deduplication ({:?}): {} exact and {} near duplicates in {} groups.",
                        r.dedup_mode, r.exact_duplicates, r.near_duplicates, r.groups
                    );
                }
                let _ = writeln!(out, "- Prompts left out: {}.", r.excluded);
            }
        }
    }

    /// The `## From prompts to rows` table.
    fn funnel(&self, out: &mut String) {
        let Self {
            manifests,
            names,
            counts: c,
            ..
        } = *self;
        let _ = writeln!(out, "\n## From prompts to rows\n");
        let _ = writeln!(out, "| step | count |\n|---|---|");
        let _ = writeln!(out, "| prompts | {} |", c.prompts);
        let _ = writeln!(out, "| prompts sampled | {} |", c.sampled_prompts);
        let _ = writeln!(out, "| responses | {} |", c.rollouts);
        let _ = writeln!(
            out,
            "| valid responses (not truncated, no error) | {} |",
            c.valid
        );
        let _ = writeln!(out, "| truncated responses | {} |", c.truncated);
        for (m, name) in manifests.iter().zip(names) {
            let _ = writeln!(
                out,
                "| `{name}`: prompts with responses / kept by the filters / with a row | {} / {} / {} |",
                m.prompts_in,
                m.prompts_in.saturating_sub(m.dropped_by_filter),
                m.prompts
            );
            let _ = writeln!(out, "| `{name}`: rows | {} |", m.rows);
        }
    }

    /// The `## Tokens and cost` section, and the partial-run note.
    fn cost(&self, out: &mut String) {
        let Self {
            wd,
            config,
            manifests,
            counts: c,
            ..
        } = *self;
        let _ = writeln!(out, "\n## Tokens and cost\n");
        let p = &config.pricing;
        match (p.input.zip(p.output), c.prompt_tokens) {
            (Some((i, o)), Some(prompt)) => {
                let _ = writeln!(
                    out,
                    "Sampling: {} requests, {prompt} prompt and {} completion tokens; ${:.4} at \
                     ${i} / ${o} per million prompt / completion tokens.",
                    c.requests,
                    c.completion_tokens,
                    (prompt as f64 * i + c.completion_tokens as f64 * o) / 1e6
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "Sampling: {} requests, {} completion tokens; no cost recorded (no prices were \
                     given: set pricing.input and pricing.output).",
                    c.requests, c.completion_tokens
                );
            }
        }
        for m in manifests.iter().filter(|m| m.scores != "inline") {
            if let Some(j) = crate::store::rollout::judge_spend(wd.root(), &m.scores) {
                let judge_cost = j
                    .cost(p.judge_input.zip(p.judge_output))
                    .map_or_else(|| "no price given".into(), |c| format!("${c:.4}"));
                let _ = writeln!(
                    out,
                    "\nJudge (`{}`): {} prompt and {} completion tokens; {judge_cost}.",
                    m.scores, j.prompt_tokens, j.completion_tokens
                );
            }
        }
        if manifests.iter().any(|m| m.partial) {
            let _ = writeln!(
                out,
                "\n**Partial:** sampling was not finished when these files were written; they hold \
                 the prompts finished by then."
            );
        }
    }

    /// The `## Rebuilding` section: the command that wrote each file.
    fn rebuilding(&self, out: &mut String) {
        let Self {
            wd,
            manifests,
            names,
            ..
        } = *self;
        let _ = writeln!(out, "\n## Rebuilding\n");
        let _ = writeln!(
            out,
            "Each file is rebuilt, with no new inference, by the command that wrote it, run where it \
             ran with the work dir (`{}`) in place. `{CONFIG_FILE}` beside this card is the run's \
             config; each file's `.manifest.json` records its formatter, verdicts and shape.\n",
            wd.root().display()
        );
        for (m, name) in manifests.iter().zip(names) {
            let command = if m.command.is_empty() {
                "not recorded"
            } else {
                &m.command
            };
            let _ = writeln!(out, "- `{name}`: `{command}`");
        }
    }

    /// The `## License` section.
    fn license(&self, out: &mut String) {
        let config = self.config;
        let _ = writeln!(
            out,
            "\n## License\n\n{}",
            match &config.card.license {
                Some(l) => format!(
                    "`{l}`, as given by the maker of this dataset. The model's terms and the \
                     prompts' license also apply."
                ),
                None => "Not given (`unknown`): it depends on the model's terms and the prompts' \
                         license."
                    .to_string(),
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_categories_follow_hugging_face() {
        assert_eq!(size_category(0), "n<1K");
        assert_eq!(size_category(999), "n<1K");
        assert_eq!(size_category(1_000), "1K<n<10K");
        assert_eq!(size_category(250_000), "100K<n<1M");
    }

    #[test]
    fn words_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_word("formatter.0.type=dpo"), "formatter.0.type=dpo");
        assert_eq!(
            shell_word("formatter.0.where=x > 1"),
            "'formatter.0.where=x > 1'"
        );
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
