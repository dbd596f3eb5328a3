//! `rsr format`: training sets from a saved run, with any formatter settings.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::config::{self, Config, FormatterConfig, Sources};
use crate::format::manifest::{self, Manifest};
use crate::format::{self, FormatReport, Formatter};
use crate::store::WorkDir;

/// Build training sets from saved rollouts (no inference)
///
/// Runs every configured formatter (the run's own, or as changed here:
/// formatter.0.type=dpo formatter.0.max_pass_rate=0.5) over WORK_DIR's
/// rollouts and writes WORK_DIR/train/<name>.jsonl (or .parquet) in the
/// export.format shape, atomically. Prints, per formatter, the prompts that
/// had rollouts, those dropped by its filters, and the rows written.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    work_dir: PathBuf,
    /// formatter.* and export.* overrides.
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Use the verdicts of scores/LABEL/ (from rsr verify) instead of the
    /// inline ones.
    #[arg(long, value_name = "LABEL")]
    scores: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dirs = vec![args.work_dir.clone()];
    super::common::naming_damaged(dirs, run_in(args)).await
}

async fn run_in(args: Args) -> anyhow::Result<()> {
    for o in &args.overrides {
        if !(o.starts_with("formatter") || o.starts_with("export.")) {
            bail!("`{o}`: rsr format takes only formatter.* and export.* overrides");
        }
    }
    let (wd, config) = open_saved(&args.work_dir, &args.overrides)?;
    let wd = wd.locked()?;
    let reports = format_all(&wd, &config, args.scores.as_deref()).await?;
    print_reports(&reports);
    Ok(())
}

/// Opens a sampled work dir with its saved config plus `overrides` (not
/// saved back). Commands that write into it then take its lock
/// ([`WorkDir::locked`]).
pub fn open_saved(
    dir: &std::path::Path,
    overrides: &[String],
) -> anyhow::Result<(WorkDir, Config)> {
    let wd = WorkDir::open_prepared(dir)?;
    if !WorkDir::has_saved_config(dir) {
        bail!("{} has no config.yaml: not an rsr work dir", dir.display());
    }
    let rollouts = crate::store::rollout::rollout_dir(wd.root());
    if !crate::store::rollout::has_parquet(&rollouts) {
        bail!(
            "{} has no rollouts yet: sample it first (rsr sample work_dir={}, or rsr run work_dir={}); nothing was written",
            dir.display(),
            dir.display(),
            dir.display()
        );
    }
    let mut all = vec![format!("work_dir={}", dir.display())];
    all.extend(overrides.iter().cloned());
    let resolved = config::resolve(&Sources::from_process_env(None, all), &[])?;
    crate::logging::attach_run_log(&wd.run_log_path())?;
    Ok((wd, resolved.config))
}

/// Runs every formatter of `config` into `WORK_DIR/train/`.
pub async fn format_all(
    wd: &WorkDir,
    config: &Config,
    label: Option<&str>,
) -> anyhow::Result<Vec<FormatReport>> {
    let train = wd.root().join("train");
    std::fs::create_dir_all(&train)?;
    let base = std::env::current_dir()?;
    let mut names = std::collections::HashSet::new();
    let mut reports = Vec::new();
    for (i, f) in config.formatter.iter().enumerate() {
        let formatter = Formatter::load(f, &base)?;
        if !names.insert(formatter.name.clone()) {
            bail!(
                "two formatters are named `{}`: set formatter.{i}.name to tell them apart",
                formatter.name
            );
        }
        let file_name = manifest::file_name(&formatter.name, config.export.format);
        let dest = train.join(&file_name);
        let previous = Manifest::read(&dest);
        let report = format::write_formatter(wd, &formatter, label, &dest, config.export).await?;
        let written = Manifest {
            file: format!("train/{file_name}"),
            formatter: FormatterConfig {
                name: Some(formatter.name.clone()),
                ..f.clone()
            },
            scores: label.unwrap_or("inline").to_string(),
            format: config.export.format,
            reasoning: config.export.reasoning,
            rows: report.rows,
            prompts: report.prompts_out,
            prompts_in: report.prompts_in,
            dropped_by_filter: report.dropped_by_filter,
            written_at: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            rsr_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        written
            .write(&dest)
            .with_context(|| format!("cannot write the manifest of {}", dest.display()))?;
        // The command prints its own table; the log keeps the line.
        tracing::debug!(
            "{}: {} prompts with rollouts, {} dropped by filters ({}), {} rows from {} prompts -> {}",
            report.name,
            report.prompts_in,
            report.dropped_by_filter,
            written.filters(),
            report.rows,
            report.prompts_out,
            report.path.display()
        );
        if let Some(p) = previous {
            tracing::info!("{}", written.replaced(&p));
        }
        reports.push(report);
    }
    Ok(reports)
}

/// The per-formatter counts as a table on stdout.
pub fn print_reports(reports: &[FormatReport]) {
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10}  file",
        "formatter", "prompts", "filtered", "with rows", "rows"
    );
    for r in reports {
        println!(
            "{:<12} {:>10} {:>10} {:>10} {:>10}  {}",
            r.name,
            r.prompts_in,
            r.dropped_by_filter,
            r.prompts_out,
            r.rows,
            r.path.display()
        );
    }
}
