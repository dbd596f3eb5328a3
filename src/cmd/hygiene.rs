//! `rsr hygiene`: decontaminate and deduplicate the prompts of an existing
//! work dir.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::common::check_overrides;
use crate::config::{self, Sources};
use crate::store::WorkDir;

/// Flag benchmark overlap and duplicate prompts in an existing work dir
///
/// Recomputes the hygiene columns of WORK_DIR/data/input.parquet
/// (contaminated, contaminated_by, contamination_ngram, duplicate_of,
/// duplicate_similarity) with the work dir's data.decontaminate.* and
/// data.dedup.* settings plus the overrides given here, which are saved in
/// its config.yaml. Counts are printed and saved in data/hygiene.json.
/// Flagged prompts are left out of the rest of sampling (when the run
/// resumes) and of rsr format and export, unless data.decontaminate.keep or
/// data.dedup.keep is true. Rollouts and scores are never touched. No
/// inference.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    work_dir: PathBuf,
    /// data.decontaminate.* and data.dedup.* overrides:
    /// data.decontaminate.benchmarks=[aime24.jsonl,gpqa.parquet]
    /// data.decontaminate.ngram=13 data.dedup.mode=near data.dedup.threshold=0.7
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    check_overrides(
        "hygiene",
        &args.overrides,
        &["data.decontaminate.", "data.dedup."],
    )?;
    let dir = &args.work_dir;
    let wd = WorkDir::open_prepared(dir)?;
    if !WorkDir::has_saved_config(dir) {
        bail!("{} has no config.yaml: not an rsr work dir", dir.display());
    }
    let mut all = vec![format!("work_dir={}", dir.display())];
    all.extend(args.overrides.iter().cloned());
    let (resolved, _) = super::common::resolve_checked(
        &Sources::from_process_env(None, all),
        &["data.decontaminate", "data.dedup"],
    )?;
    let wd = wd.locked()?;
    crate::logging::attach_run_log(&wd.run_log_path())?;
    let data = &resolved.config.data;
    if data.decontaminate.benchmarks.is_empty() && data.dedup.mode == config::DedupMode::Off {
        tracing::warn!(
            "no benchmark files (data.decontaminate.benchmarks) and data.dedup.mode=off: every flag is cleared"
        );
    }
    let report = crate::hygiene::rewrite(&wd, data).await?;
    let path = wd.config_path();
    crate::store::write_atomic(&path, resolved.to_yaml().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    for line in report.lines() {
        tracing::info!("{line}");
    }
    Ok(())
}
