//! The judge step: the connection to the judge server (external or
//! launched, preflighted, on the sampler's client) and the judging of every
//! saved rollout with a model verifier into `scores/<label>/`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context;

use crate::config::Config;
use crate::judge::{JudgeContext, JudgeReport, Spec};
use crate::sampler::budget::Budget;
use crate::sampler::client::HttpBackend;
use crate::sampler::server::{self, LaunchContext, ManagedServers};
use crate::store::WorkDir;

/// `sampler.*` in a server error, as the judge's keys.
fn as_judge_keys(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        e.to_string()
            .replace("sampler.", "judge.")
            .replace("Nothing was sampled", "Nothing was sent to the judge")
    )
}

/// Checks the judge server that `config`'s model verifier will ask, when
/// it is external (`judge.base_url`), before anything is sampled: a judge
/// that is down, a refused key or an unknown judge model stops the run
/// before the sampling bill, not after it. A launched judge is checked
/// when it starts.
pub async fn preflight_before_sampling(
    config: &Config,
    scoring: &super::Scoring,
) -> anyhow::Result<()> {
    let Some(spec) = scoring.model() else {
        return Ok(());
    };
    if config.judge.mode == crate::config::SamplerMode::Batch {
        // Checked by listing batches when judging starts.
        return crate::judge::batch::batchable(spec).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let s = spec.server_config(&config.judge);
    let (Some(base), Some(model)) = (&s.base_url, &s.model) else {
        return Ok(());
    };
    let backend = HttpBackend::new(&s, model, base.urls(), Arc::new(AtomicU64::new(0)))?;
    preflight(&backend, model)
        .await
        .map_err(|e| e.context("the judge was checked before sampling; nothing was sampled"))
}

/// The preflight of a judge backend, its warnings logged.
async fn preflight(backend: &HttpBackend, model: &str) -> anyhow::Result<()> {
    for w in crate::sampler::preflight::check(backend, model)
        .await
        .map_err(as_judge_keys)?
    {
        tracing::warn!("judge: {w}");
    }
    Ok(())
}

/// The judge server of `config` for `spec`, launched when `judge.base_url`
/// is null, preflighted; launched servers stop when this is dropped.
pub struct JudgeConnection {
    /// The client and model.
    pub ctx: JudgeContext,
    _servers: Option<ManagedServers>,
}

impl JudgeConnection {
    /// Opens (and preflights) the judge server.
    pub async fn open(
        config: &Config,
        wd: &WorkDir,
        spec: &Spec,
        refresh: bool,
    ) -> anyhow::Result<Self> {
        let mut s = spec.server_config(&config.judge);
        if s.base_url.is_none() {
            server::template(&s).map_err(as_judge_keys)?;
            if s.model.is_none() {
                s.model = server::default_model_name(&s);
            }
        }
        let model = s.model.clone().context(
            "judge.model is not set: name the judge model served at judge.base_url (judge.model=NAME)",
        )?;
        let ctx = LaunchContext {
            work_dir: wd.root().to_path_buf(),
            input: wd.input_path(),
            logs_dir: wd.judge_logs_dir(),
            gpus: server::visible_gpus(),
        };
        if s.base_url.is_none() {
            std::fs::create_dir_all(&ctx.logs_dir)
                .with_context(|| format!("cannot create {}", ctx.logs_dir.display()))?;
        }
        let (urls, servers) = server::endpoints(&s, &ctx, 1)
            .await
            .map_err(as_judge_keys)?;
        let backend = HttpBackend::new(&s, &model, &urls, Arc::new(AtomicU64::new(0)))?;
        if config.judge.mode == crate::config::SamplerMode::Online {
            preflight(&backend, &model).await?;
        }
        Ok(Self {
            ctx: JudgeContext {
                backend: Arc::new(backend),
                model,
                budget: budget(config, wd, spec)?,
                refresh,
            },
            _servers: servers,
        })
    }
}

/// `budget.max_cost` for judging, when it and the judge's prices are set:
/// what sampling (at `pricing.input`/`output`) and earlier judging spent
/// counts against it, and an answer may use `judge.max_tokens` (a reward
/// none).
fn budget(config: &Config, wd: &WorkDir, spec: &Spec) -> anyhow::Result<Option<Budget>> {
    let p = &config.pricing;
    let (Some(max), Some(input), Some(output)) =
        (config.budget.max_cost, p.judge_input, p.judge_output)
    else {
        return Ok(None);
    };
    let state = crate::store::RunState::load(&wd.state_path())?;
    let shards: Vec<u32> = state.shards.iter().map(|s| s.shard).collect();
    let sampling = crate::sampler::budget::saved_spent(wd.root(), &shards)?;
    // Every saved judge answer, a killed run's included.
    crate::store::judged::recover(wd.root(), &|_| true)?;
    let (judge_prompt, judge_completion) = crate::store::judged::spent(wd.root())?;
    let before = p
        .input
        .zip(p.output)
        .map_or(0.0, |(i, o)| sampling.cost(i, o))
        + (judge_prompt as f64 * input + judge_completion as f64 * output) / 1e6;
    let max_tokens = match spec {
        Spec::Reward { .. } => 0,
        _ => u64::from(config.judge.max_tokens.get()),
    };
    Ok(Some(Budget::judging(
        max,
        (input, output),
        max_tokens,
        before,
    )))
}

/// Judges every saved rollout of `wd` with the model verifier of `config`
/// and prints what it did; fails (non-zero exit) when the run stopped early
/// or requests failed, naming the command that finishes it. A stop at
/// `budget.max_cost` returns the report with `budget_stop` set. With
/// `refresh`, saved answers are asked again and replaced. An open
/// `connection` (the one sampling asked) is used instead of opening one.
pub async fn judge(
    wd: &WorkDir,
    config: &Config,
    spec: &Spec,
    refresh: bool,
    connection: Option<&JudgeConnection>,
) -> anyhow::Result<JudgeReport> {
    let state = crate::store::RunState::load(&wd.state_path())?;
    let c = &state.counters;
    if spec.needs_gold() && c.prompts > 0 && c.prompts_without_answer == c.prompts {
        anyhow::bail!(
            "none of the {} prompts has a gold answer, and {} (template {}) compares with one: \
             use verifier.options.template=rubric or verifier.type=reward-model for prompts without answers",
            c.prompts,
            config.verifier.kind,
            config
                .verifier
                .options
                .get("template")
                .and_then(|t| t.as_str())
                .unwrap_or("correctness")
        );
    }
    let opened;
    let shared;
    let ctx = match connection {
        Some(open) => {
            shared = JudgeContext {
                budget: budget(config, wd, spec)?,
                refresh,
                ..open.ctx.sharing()
            };
            &shared
        }
        None => {
            opened = JudgeConnection::open(config, wd, spec, refresh).await?;
            &opened.ctx
        }
    };
    if config.judge.mode == crate::config::SamplerMode::Batch {
        crate::judge::batch::prefill(wd, config, spec, ctx).await?;
    }
    let report = crate::judge::judge(wd, config, spec, ctx).await?;
    print_report(wd, config, &report);
    // A stop at a budget is the caller's to report (its own exit status).
    if report.budget_stop.is_some() {
        return Ok(report);
    }
    if let Some(why) = &report.stopped {
        anyhow::bail!(
            "judging stopped: {why}. {} of {} shard(s) scored; answers received are saved: run the same command again to finish (nothing judged is sent twice)",
            report.shards,
            report.shards_total
        );
    }
    if report.failed_requests > 0 {
        let causes: Vec<String> = report.failures.iter().take(3).map(|g| g.line()).collect();
        anyhow::bail!(
            "{} judge request(s) failed after their retries, so their rollouts have no score:\n  {}\nrun the same command again to ask them again (answers already saved are not sent)",
            report.failed_requests,
            causes.join("\n  ")
        );
    }
    Ok(report)
}

fn print_report(wd: &WorkDir, config: &Config, r: &JudgeReport) {
    let label = config.verifier.label();
    let outcomes: Vec<String> = r.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    tracing::info!(
        "judged {} rollouts with {} -> {} ({} of {} shard file(s)): {}; {} request item(s) sent ({} requests, {} prompt + {} completion tokens; {:.2} s in flight), {} answered from saved answers, in {:.1} s",
        r.scored,
        config.verifier.kind,
        crate::store::rollout::scores_dir(wd.root())
            .join(label)
            .display(),
        r.shards,
        r.shards_total,
        outcomes.join(", "),
        r.sent,
        r.requests,
        r.prompt_tokens,
        r.completion_tokens,
        r.sending.as_secs_f64(),
        r.cached,
        r.elapsed.as_secs_f64()
    );
    if r.valid > 0 {
        tracing::info!(
            "{} of {} valid rollouts pass ({:.1}%)",
            r.pass,
            r.valid,
            100.0 * r.pass as f64 / r.valid as f64
        );
    }
    let [both, rules, judge, neither] = r.agreement;
    if both + rules + judge + neither > 0 {
        tracing::info!(
            "against the inline verdicts: {both} both pass, {rules} inline only, {judge} {label} only, {neither} both fail (rsr sql {} \"SELECT * FROM disagreements\" --scores {label} lists them)",
            wd.root().display()
        );
    }
    let unparsed = r.outcomes.get("unparsed").copied().unwrap_or(0);
    if unparsed > 0 {
        tracing::warn!(
            "{unparsed} judge answer(s) could not be read, so those rollouts have no score; some of them: {}. Fix the template or verifier.options (parser, verdict_pattern, pass_words) and run rsr verify again: saved answers are re-read, not asked again",
            r.unparsed_examples
                .iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
