//! The sample step: the checks before anything is sent, the connection to
//! the model (external, launched or replayed, preflighted), and the sampler
//! run over the prepared work dir.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context;

use crate::config::{SamplerMode, SamplerType};
use crate::judge::live::LiveJudge;
use crate::sampler::batch::BatchBackend;
use crate::sampler::client::HttpBackend;
use crate::sampler::replay::ReplayBackend;
use crate::sampler::server::{self, LaunchContext, ManagedServers};
use crate::sampler::verdicts::VerdictStage;
use crate::sampler::{self, Backend, SampleContext, SampleReport};
use crate::scoring::Scoring;
use crate::scoring::judge::JudgeConnection;
use crate::store::rollout::ScoreMeaning;
use crate::store::{RunState, ShardStatus};

use super::Run;

/// Whether every shard of the work dir is sampled already (nothing to
/// connect to or launch).
pub fn fully_sampled(run: &Run) -> bool {
    RunState::load(&run.wd.state_path()).is_ok_and(|state| all_done(&run.wd, &state))
}

/// Whether every shard this process samples (a task's own) is done.
fn all_done(wd: &crate::store::WorkDir, state: &RunState) -> bool {
    state
        .shards
        .iter()
        .filter(|s| wd.owns(s.shard))
        .all(|s| s.status == ShardStatus::Done)
}

/// Checks everything sampling needs before anything is prepared, launched
/// or sent, so that a missing setting fails in a second and leaves no new
/// work dir behind. When rsr launches the server itself, `sampler.model`
/// is only the name it serves the model under: it defaults to
/// [`server::default_model_name`].
pub fn check_before_sampling(run: &mut Run) -> anyhow::Result<()> {
    if fully_sampled(run) {
        return Ok(());
    }
    let result = check_sampler(run).and_then(|()| check_verifier(run));
    if result.is_err() {
        run.discard_if_new();
    }
    result
}

/// [`check_before_sampling`] for rounds run by hand (`rsr batch export`):
/// no server is needed, only the model the bodies name and the verifier's
/// needs.
pub fn check_before_batch_files(run: &mut Run) -> anyhow::Result<()> {
    if fully_sampled(run) {
        return Ok(());
    }
    let result = run
        .resolved
        .require("sampler.model")
        .map_err(anyhow::Error::from)
        .and_then(|()| check_verifier(run));
    if result.is_err() {
        run.discard_if_new();
    }
    result
}

fn check_sampler(run: &mut Run) -> anyhow::Result<()> {
    let s = &run.resolved.config.sampler;
    if s.kind == SamplerType::Replay {
        if s.replay_path.is_none() {
            anyhow::bail!(
                "sampler.replay_path is not set: type replay needs the file of responses"
            );
        }
        return Ok(());
    }
    if s.base_url.is_none() {
        server::template(s)?;
        if s.model.is_none()
            && let Some(name) = server::default_model_name(s)
        {
            tracing::info!(
                "sampler.model not set: the launched server serves the model as `{name}`"
            );
            run.resolved.config.sampler.model = Some(name);
            run.resolved.missing.retain(|k| k != "sampler.model");
        }
    }
    run.resolved.require("sampler.model")?;
    let c = &run.resolved.config;
    if c.sampler.temperature == 0.0
        && c.sampling.max_rollouts.get() > 1
        && !c.sampling.allow_identical
    {
        tracing::warn!(
            "sampler.temperature is 0 with sampling.max_rollouts {}: every response to a prompt will be the same, so rejection sampling has nothing to choose from (the identical-responses guard will stop the run); use a temperature of 0.6 to 1.0",
            c.sampling.max_rollouts
        );
    }
    if c.sampling.early_stop
        && c.sampling.max_rollouts.get() > c.sampling.step_size.get()
        && !run.scoring.family().early_stops()
    {
        tracing::warn!(
            "verifier {} labels a prompt from all its rollouts, so early stop cannot end a prompt \
             before sampling.max_rollouts: every prompt gets {} rollouts; lower \
             sampling.max_rollouts to what the vote needs",
            c.verifier.kind,
            c.sampling.max_rollouts
        );
    }
    Ok(())
}

/// What the verifier needs before anything is sampled: a judge server to
/// name, or a machine that isolates programs (one that cannot runs none;
/// the sandbox probed is kept for the run).
fn check_verifier(run: &mut Run) -> anyhow::Result<()> {
    if let Scoring::Code(spec) = &run.scoring {
        run.sandbox = Some(crate::execute::open_sandbox(spec)?);
    }
    check_judge(&run.resolved.config, &run.scoring)
}

/// Everything checked before the first request, in order: the sampling
/// settings ([`check_before_sampling`]), the external sampling server
/// (preflight), and the judge server when something is left to sample. A
/// new work dir whose server fails a check is removed: nothing was made.
pub async fn connect(run: &mut Run) -> anyhow::Result<Option<Connection>> {
    check_before_sampling(run)?;
    let connection = Connection::external(run)
        .await
        .inspect_err(|_| run.discard_if_new())?;
    if !fully_sampled(run) {
        crate::scoring::judge::preflight_before_sampling(&run.resolved.config, &run.scoring)
            .await
            .inspect_err(|_| run.discard_if_new())?;
    }
    Ok(connection)
}

/// The sampling sequence of `rsr run` and `rsr sample`: [`connect`], then
/// prepare (unless the work dir has its input), then sample.
/// A sampling task prepares the work dir only when no other task has
/// ([`super::prepare_once`]), then takes its unfinished shards
/// ([`crate::store::WorkDir::take_shards`]).
pub async fn connect_prepare_sample(run: &mut Run, quiet: bool) -> anyhow::Result<SampleReport> {
    let connection = connect(run).await?;
    match run.wd.task() {
        None => super::prepare(run).await?,
        Some(task) => {
            super::prepare_once(run).await?;
            let state = RunState::load(&run.wd.state_path())?;
            let unfinished: Vec<u32> = state
                .shards
                .iter()
                .filter(|s| s.status != ShardStatus::Done)
                .map(|s| s.shard)
                .collect();
            let owned = state.shards.iter().filter(|s| task.owns(s.shard)).count();
            if owned == 0 {
                tracing::info!(
                    "task {task} owns no shard: the work dir has {} (shards {}, {}+{}, … are this task's)",
                    state.shards.len(),
                    task.index,
                    task.index,
                    task.count
                );
            }
            run.wd.take_shards(&unfinished)?;
            run.wd.state_file().start()?;
        }
    }
    sample(run, connection, quiet).await
}

/// A model verifier's judge server must be named (or launchable) before
/// anything is sampled.
fn check_judge(config: &crate::config::Config, scoring: &Scoring) -> anyhow::Result<()> {
    let Some(spec) = scoring.model() else {
        return Ok(());
    };
    let s = spec.server_config(&config.judge);
    if s.base_url.is_none() {
        server::template(&s)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("sampler.", "judge.")))?;
    }
    if s.model.is_none() && (s.base_url.is_some() || server::default_model_name(&s).is_none()) {
        anyhow::bail!(
            "judge.model is not set: verifier {} asks a judge model; name it (judge.model=NAME) with judge.base_url",
            config.verifier.kind
        );
    }
    Ok(())
}

/// The backend a run samples from, checked by preflight, with the servers
/// rsr launched for it (stopped when this is dropped).
pub struct Connection {
    backend: Backend,
    model: String,
    retries: Arc<AtomicU64>,
    _servers: Option<ManagedServers>,
}

impl Connection {
    /// The connection to `sampler.base_url`, preflighted, when the config
    /// names one: checked before anything is prepared, so that a wrong URL,
    /// key or model fails in seconds. `None` for launched servers and replay.
    pub async fn external(run: &Run) -> anyhow::Result<Option<Self>> {
        let s = &run.resolved.config.sampler;
        if s.kind == SamplerType::Replay || s.base_url.is_none() || fully_sampled(run) {
            return Ok(None);
        }
        Self::open(run).await.map(Some)
    }

    /// The batch-file transport of `rsr batch export` (the next round
    /// written to `export_to`) and `rsr batch import` (`None`): nothing is
    /// sent anywhere.
    pub fn batch_files(run: &Run, export_to: Option<std::path::PathBuf>) -> anyhow::Result<Self> {
        run.resolved.require("sampler.model")?;
        let config = &run.resolved.config;
        let model = config.sampler.model.clone().unwrap_or_default();
        let retries = Arc::new(AtomicU64::new(0));
        let mut bodies = HttpBackend::new(&config.sampler, &model, &[], Arc::clone(&retries))?;
        bodies.seed_each_request();
        let files = BatchBackend::files(config, run.wd.root(), bodies, export_to)?;
        let backend = Backend::Batch(Box::new(files));
        Ok(Self {
            backend,
            model,
            retries,
            _servers: None,
        })
    }

    /// Opens the backend of `run` (launching servers when the config asks
    /// for it) and runs the preflight.
    pub async fn open(run: &Run) -> anyhow::Result<Self> {
        let config = &run.resolved.config;
        let s = &config.sampler;
        let replay = s.kind == SamplerType::Replay;
        if !replay {
            run.resolved.require("sampler.model")?;
        }
        let model = s.model.clone().unwrap_or_else(|| "replay".into());
        let retries = Arc::new(AtomicU64::new(0));
        let mut _servers = None;
        let backend = open_backend(run, &model, &retries, &mut _servers).await?;
        match &backend {
            Backend::Http(http) => {
                let warnings = if s.endpoints_file.is_some() {
                    sampler::preflight::check_changing(http, &model).await?
                } else {
                    sampler::preflight::check(http, &model).await?
                };
                for w in warnings {
                    tracing::warn!("{w}");
                }
            }
            Backend::Batch(b) => b.preflight().await?,
            Backend::Replay(_) => {}
        }
        Ok(Self {
            backend,
            model,
            retries,
            _servers,
        })
    }
}

async fn open_backend(
    run: &Run,
    model: &str,
    retries: &Arc<AtomicU64>,
    _servers: &mut Option<ManagedServers>,
) -> anyhow::Result<Backend> {
    let config = &run.resolved.config;
    let s = &config.sampler;
    let backend = if s.kind == SamplerType::Replay {
        let path = s
            .replay_path
            .as_deref()
            .context("sampler.replay_path is not set: type replay needs the file of responses")?;
        // Enough shards for every prompt in flight, plus the next one.
        let in_flight = config.sampling.concurrent_prompts.get();
        let cached = in_flight.div_ceil(config.shard.size.get()) + 1;
        let r = ReplayBackend::open(
            path,
            &run.wd.input_path(),
            run.wd.replay_spill_dir(),
            cached,
        )?;
        let c = r.counts();
        tracing::info!(
            "replaying {} responses for {} prompts from {}",
            c.responses,
            c.prompts,
            path.display()
        );
        if c.unknown > 0 {
            tracing::warn!(
                "{} responses in {} have ids that are not in the input; they are ignored",
                c.unknown,
                path.display()
            );
        }
        Backend::Replay(r)
    } else {
        let ctx = LaunchContext {
            work_dir: run.wd.root().to_path_buf(),
            input: run.wd.input_path(),
            logs_dir: run.wd.server_logs_dir(),
            gpus: server::visible_gpus(),
        };
        let per_request = if s.use_n {
            config.sampling.step_size.get() as u64
        } else {
            1
        };
        if s.mode == SamplerMode::Batch {
            // The bodies are built as online; the batch API is the transport.
            let urls = s
                .base_url
                .as_ref()
                .map(|b| b.urls().to_vec())
                .unwrap_or_default();
            let mut bodies = HttpBackend::new(s, model, &urls, Arc::clone(retries))?;
            bodies.seed_each_request();
            let b = BatchBackend::open(config, run.wd.root(), bodies)?;
            tracing::info!("sampling through {} in rounds", b.describe());
            return Ok(Backend::Batch(Box::new(b)));
        }
        if s.base_url.is_none() {
            std::fs::create_dir_all(&ctx.logs_dir)
                .with_context(|| format!("cannot create {}", ctx.logs_dir.display()))?;
        }
        let (urls, launched) = server::endpoints(s, &ctx, per_request).await?;
        *_servers = launched;
        let mut http = HttpBackend::new(s, model, &urls, Arc::clone(retries))?;
        http.seed_each_request();
        if s.kind == SamplerType::LlamaCpp {
            // llama-server's usage counts one choice when n > 1.
            http.count_tokens_by_tokenizing();
        }
        Backend::Http(http)
    };
    Ok(backend)
}

/// Samples the prepared work dir of `run` through `connection` (opened
/// and preflighted here when `None`). A model verifier's judge server is
/// opened here too (kept in `run.judge`): its verdicts are asked while
/// sampling.
pub async fn sample(
    run: &mut Run,
    connection: Option<Connection>,
    quiet: bool,
) -> anyhow::Result<SampleReport> {
    let state = RunState::load(&run.wd.state_path())?;
    if all_done(&run.wd, &state) {
        // Nothing to request: no server is launched or asked.
        tracing::info!("every shard is sampled already: nothing to request");
        return Ok(SampleReport {
            counters: Default::default(),
            elapsed: std::time::Duration::ZERO,
            stopped: None,
            parts: 0,
            failures: Vec::new(),
            verdicts: None,
        });
    }
    let config = &run.resolved.config;
    let scoring = &run.scoring;
    let c = &state.counters;
    if scoring.needs_gold() && c.prompts > 0 && c.prompts_without_answer == c.prompts {
        run.discard_if_new();
        anyhow::bail!(
            "none of the {} prompts in {} has a gold answer, and verifier {} scores against one: \
             every response would score 0. Give the input an `answer` column (or `metadata.answer`), \
             or map one with data.preprocess.transform; nothing was sampled",
            c.prompts,
            run.wd.input_path().display(),
            config.verifier.kind
        );
    }
    let connection = match connection {
        Some(c) => c,
        // A new work dir whose server could not be started holds nothing
        // sampled: it goes, so the next try starts clean.
        None => Connection::open(run).await.inspect_err(|_| {
            if !crate::store::WorkDir::has_sampled(run.wd.root()) {
                run.discard_if_new();
            }
        })?,
    };
    let model = connection.model.clone();
    if let Some(w) = sampler::guard::max_tokens_warning(&model, config.sampler.max_tokens.get()) {
        tracing::warn!("{w}");
    }
    let judge_batch = config.judge.mode == SamplerMode::Batch;
    let (stage, meaning) = match &run.scoring {
        // Judged through batches after sampling: no verdict while sampling.
        Scoring::Model(spec) if judge_batch => (None, spec.meaning()),
        Scoring::Model(spec) => {
            let spec = spec.clone();
            let judge = JudgeConnection::open(&run.resolved.config, &run.wd, &spec, false).await?;
            let ctx = judge.ctx.sharing();
            run.judge = Some(judge);
            let live = LiveJudge::new(&run.wd, &run.resolved.config, &spec, ctx)?;
            let stage: Box<dyn VerdictStage> = Box::new(live);
            (Some(stage), spec.meaning())
        }
        Scoring::Code(spec) => {
            let sandbox = match &run.sandbox {
                Some(s) => s.clone(),
                None => {
                    let s = crate::execute::open_sandbox(spec)?;
                    run.sandbox = Some(s.clone());
                    s
                }
            };
            let stage = crate::execute::stage::CodeStage::new(&run.wd, spec, sandbox)?;
            let stage: Box<dyn VerdictStage> = Box::new(stage);
            (Some(stage), ScoreMeaning::BINARY)
        }
        _ => (None, ScoreMeaning::BINARY),
    };
    let ctx = SampleContext {
        backend: Arc::new(connection.backend),
        verifier: run.scoring.inline(),
        stage,
        meaning,
        model,
        retries: connection.retries,
        quiet,
    };
    let report = sampler::sample(&run.resolved.config, &run.wd, ctx).await?;
    Ok(report)
}
