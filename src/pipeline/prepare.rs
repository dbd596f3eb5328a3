//! The prepare step: the input file into `data/input.parquet` and a fresh
//! `state.json`, unless the work dir has them.

use crate::config::Config;
use crate::data;
use crate::hygiene;
use crate::store::{RunState, StoreError, WorkDir};

use super::Run;

/// Prepares the input unless the work dir has it; a work dir this command
/// created is removed again when preparing fails.
pub async fn prepare(run: &Run) -> anyhow::Result<()> {
    if !run.wd.input_path().is_file()
        && let Err(e) = run.resolved.require("data.input_path")
    {
        run.discard_if_new();
        return Err(e.into());
    }
    if let Some(input) = run.resolved.config.data.input_path.as_deref()
        && !run.wd.input_path().is_file()
        && !input.exists()
    {
        run.discard_if_new();
        let origin = run.resolved.origin("data.input_path");
        let hint = if origin.ends_with(".yaml") || origin.ends_with(".yml") {
            "; a path in a config file is relative to that file's directory"
        } else {
            ""
        };
        anyhow::bail!(
            "data.input_path: {} does not exist (set in {origin}{hint})",
            input.display()
        );
    }
    run.save_config()?;
    let config = &run.resolved.config;
    let dest = run.wd.input_path();
    // `state.json` is written last: an input without it was cut short.
    if dest.is_file() && run.wd.state_path().is_file() {
        tracing::info!(
            "{} already exists: reusing it (delete it to prepare again)",
            dest.display()
        );
        return Ok(());
    }
    let verifier = match &run.scoring {
        crate::scoring::Scoring::Rule(v) if v.reads_gold() => Some(v.as_ref()),
        _ => None,
    };
    let (summary, hygiene) = match prepare_input(config, &run.wd, verifier).await {
        Ok(r) => r,
        Err(e) => {
            run.discard_if_new();
            return Err(e);
        }
    };
    let mut state = RunState::new(&summary.shard_sizes, summary.without_answer);
    state.validity = Some(crate::store::rollout::Validity {
        drop_truncated: config.sampler.drop_truncated,
    });
    state.save(&run.wd.state_path())?;
    if summary.without_answer > 0 && run.scoring.needs_gold() {
        tracing::warn!(
            "{} of {} prompts have no answer: verifiers cannot score them",
            summary.without_answer,
            summary.rows
        );
    }
    for line in hygiene.lines() {
        tracing::info!("{line}");
    }
    tracing::info!(
        "prepared {} prompts in {} shard(s) -> {}",
        summary.rows,
        summary.shard_sizes.len(),
        dest.display()
    );
    Ok(())
}

/// [`prepare`] for a sampling task: with the work dir's lock held shared
/// (no whole-dir writer runs beside the tasks) and `.prepare.lock` held,
/// so that tasks prepare one at a time. The first prepares the work dir
/// (or, while nothing is sampled, saves its config over what `rsr
/// prepare` left); the others find it prepared. Once anything is sampled
/// the config is frozen and nothing is written.
pub async fn prepare_once(run: &mut Run) -> anyhow::Result<()> {
    run.wd.share()?;
    let frozen = |run: &Run| run.wd.state_path().is_file() && WorkDir::has_sampled(run.wd.root());
    if frozen(run) {
        return Ok(());
    }
    let wd = run.wd.clone();
    let _held = tokio::task::spawn_blocking(move || wd.hold_prepare_lock()).await??;
    if !frozen(run) {
        prepare(run).await?;
    }
    Ok(())
}

/// Validates the input into `data/input.parquet` with the hygiene flags,
/// and saves hygiene's counts (`data/hygiene.json`) when it checked
/// anything.
async fn prepare_input(
    config: &Config,
    wd: &WorkDir,
    verifier: Option<&dyn crate::verifier::Verifier>,
) -> anyhow::Result<(data::Summary, hygiene::Report)> {
    let input = config
        .data
        .input_path
        .as_deref()
        .expect("caller requires data.input_path");
    let mut checker = hygiene::Checker::from_config(&config.data).await?;
    let shard_size = config.shard.size.get() as u64;
    let summary = data::prepare_file(
        input,
        &config.data,
        shard_size,
        &wd.input_path(),
        &mut checker,
        verifier,
    )
    .await?;
    let report = checker.into_report();
    if report.checked() {
        let path = wd.hygiene_report_path();
        report
            .save(wd.root())
            .map_err(|source| StoreError::Io { path, source })?;
    }
    Ok((summary, report))
}
