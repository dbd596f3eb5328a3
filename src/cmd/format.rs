//! `rsr format`: training sets from a saved run, with any formatter settings.

use std::path::PathBuf;

use crate::formatter::{self, FormatReport};

use super::common::{check_overrides, open_saved};

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
    pub(super) work_dir: PathBuf,
    /// formatter.* and export.* overrides.
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Use the verdicts of scores/LABEL/ (from rsr verify) instead of the
    /// inline ones.
    #[arg(long, value_name = "LABEL")]
    scores: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    check_overrides(
        "format",
        &args.overrides,
        &["formatter", "export.", "card."],
    )?;
    let (wd, config, _) = open_saved(&args.work_dir, &args.overrides, &[])?;
    let wd = wd.locked()?;
    let reports = formatter::write_all(
        &wd,
        &config,
        super::common::scores_label(&config, args.scores.as_deref()),
    )
    .await?;
    print_reports(&reports);
    Ok(())
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
