//! The prepare step: the input file into `data/input.parquet` and a fresh
//! `state.json`, unless the work dir has them.

use crate::data;
use crate::store::RunState;

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
    let report = match data::prepare(config, &run.wd).await {
        Ok(r) => r,
        Err(e) => {
            run.discard_if_new();
            return Err(e.into());
        }
    };
    match &report.summary {
        None => {
            tracing::info!(
                "{} already exists: reusing it (delete it to prepare again)",
                report.path.display()
            );
        }
        Some(summary) => {
            let mut state = RunState::new(&summary.shard_sizes, summary.without_answer);
            state.save(&run.wd.state_path())?;
            if summary.without_answer > 0 && needs_gold(config) {
                tracing::warn!(
                    "{} of {} prompts have no answer: verifiers cannot score them",
                    summary.without_answer,
                    summary.rows
                );
            }
            if let Some(report) = &summary.hygiene {
                for line in report.lines() {
                    tracing::info!("{line}");
                }
            }
            tracing::info!(
                "prepared {} prompts in {} shard(s) -> {}",
                summary.rows,
                summary.shard_sizes.len(),
                report.path.display()
            );
        }
    }
    Ok(())
}

/// Whether the run's verifier compares with a gold answer (a rubric judge,
/// a reward model and the majority vote need none).
fn needs_gold(config: &crate::config::Config) -> bool {
    let v = &config.verifier;
    if crate::judge::is_model_verifier(&v.kind) {
        crate::judge::Spec::from_config(v).is_ok_and(|s| s.needs_gold())
    } else if v.kind == crate::majority::NAME {
        false
    } else {
        crate::verifier::build(&v.kind, &v.options).is_ok_and(|r| r.needs_gold())
    }
}
