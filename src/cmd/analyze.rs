//! `rsr analyze`: statistics, charts and an HTML report of a saved run.

use std::path::PathBuf;

use super::common::open_saved;

/// Statistics, charts and a one-page report of a run (no inference)
///
/// Writes WORK_DIR/summary/stats.json, statistics.txt, charts/*.png
/// (per-prompt pass rates, completion lengths passing vs failing, rollouts
/// per prompt, best-of-N error for the numeric verifier) and report.html,
/// and prints statistics.txt. Costs come from the tokens and the prices of
/// the run's config, or of pricing.* given here (a price fixed later fixes
/// every figure).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    pub(super) work_dir: PathBuf,
    /// Use the verdicts of scores/LABEL/ instead of the inline ones.
    #[arg(long, value_name = "LABEL")]
    scores: Option<String>,
    /// Prices for the cost figures: pricing.input=0.27 pricing.output=1.10
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    super::common::check_overrides("analyze", &args.overrides, &["pricing."])?;
    let (wd, config, _) = open_saved(&args.work_dir, &args.overrides, &[])?;
    let wd = wd.locked()?;
    let stats = crate::analyze::write_summary(
        &wd,
        &config,
        super::common::scores_label(&config, args.scores.as_deref()),
    )
    .await?;
    print!("{}", crate::analyze::report::text(&stats));
    tracing::info!(
        "wrote {}/summary/ (stats.json, statistics.txt, charts/, report.html)",
        wd.root().display()
    );
    Ok(())
}
