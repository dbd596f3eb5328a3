//! `rsr verify`: re-score saved rollouts with any verifier.

use std::path::PathBuf;

use crate::scoring::Scoring;
use crate::store::rollout;

use super::common::{check_overrides, open_saved};

/// Re-score saved rollouts with any verifier (no new sampling)
///
/// Scores every saved response in WORK_DIR/rollout/ with verifier.type
/// (default: the run's verifier) and verifier.options, and writes
/// scores/<label>/shard_NNNN.parquet (label: verifier.label, default the
/// verifier name). Rule verifiers print how many verdicts changed against
/// the scores given while sampling. Verifiers that call a model send their
/// requests to the judge.* server (judge.base_url, judge.model, ...); every
/// answer is saved as it arrives, so a stopped run resumes with the same
/// command and nothing already judged is sent again. Rollouts are only read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    #[arg(required_unless_present = "list")]
    pub(super) work_dir: Option<PathBuf>,
    /// Verifier, judge, pricing and budget overrides: verifier.type=mcq-rlvr
    /// verifier.label=mcq-v2 verifier.options.tolerance=1e-4
    /// judge.base_url=http://127.0.0.1:8001/v1 judge.model=NAME
    /// pricing.judge_input=0.2 budget.max_cost=5
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// List the verifiers and exit.
    #[arg(long)]
    list: bool,
    /// Ask the judge again for every request, replacing the saved answers
    /// (saved answers are found by the judge model's name: use this when the
    /// server behind that name changed). Costs the requests again.
    #[arg(long)]
    refresh: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        for (name, description) in crate::scoring::list() {
            println!("{name:<17} {description}");
        }
        return Ok(());
    }
    let dir = args.work_dir.expect("clap requires work_dir");
    check_overrides(
        "verify",
        &args.overrides,
        &["verifier.", "judge.", "pricing.", "budget."],
    )?;
    let (wd, config, scoring) = open_saved(&dir, &args.overrides, &["verifier"])?;
    // The run's own label holds the verdicts given while sampling: other
    // verdicts under it would pass for them.
    if let Some(saved) = crate::config::saved(&dir)? {
        let (run, new) = (&saved.verifier, &config.verifier);
        if new.label() == run.label() && (new.kind != run.kind || new.options != run.options) {
            anyhow::bail!(
                "scores/{} holds the verdicts given while sampling (verifier {} as the run \
                 configured it); name this scoring with verifier.label=NAME, e.g. \
                 verifier.label={}-v2. Nothing was written",
                run.label(),
                run.kind,
                new.kind
            );
        }
    }
    let wd = wd.locked()?;
    match &scoring {
        Scoring::Model(spec) => {
            return super::common::judge(&wd, &config, spec, args.refresh, None).await;
        }
        Scoring::Majority(_) => return super::common::majority(&wd, &config).await,
        Scoring::Code(spec) => return super::common::code(&wd, &config, spec, None).await,
        Scoring::Rule(_) => {}
    }
    let totals = crate::scoring::rescore::rescore(&wd, &config).await?;
    let vc = &config.verifier;
    let label = vc.label();
    let pass_rate = if totals.valid == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * totals.pass as f64 / totals.valid as f64)
    };
    tracing::info!(
        "scored {} rollouts with {} -> {} ({} shard file(s)): {} of {} valid rollouts pass ({pass_rate}); {} verdicts changed against the inline scores ({} up, {} down), {} had no inline score, {} had no response",
        totals.scored,
        vc.kind,
        rollout::scores_dir(wd.root()).join(label).display(),
        totals.shards,
        totals.pass,
        totals.valid,
        totals.up + totals.down,
        totals.up,
        totals.down,
        totals.no_inline,
        totals.no_response,
    );
    Ok(())
}
