//! The rollout operator: samples every prompt in steps from an
//! OpenAI-compatible server (or replays saved responses), scores each
//! response inline, stops a prompt by the policy in [`plan`], and appends
//! rows to the rollout shards through the [`writer`].
//!
//! Scheduling is work-conserving: at most `sampler.concurrent_requests`
//! requests and `sampling.concurrent_prompts` prompts are in flight, and the
//! moment a request finishes the next queued one is sent. A prompt waits
//! only for its own step; the next shard's prompts start while the current
//! one drains. Resume replays saved rows through the same policy, so only
//! missing rollouts are requested.

pub mod batch;
pub mod breaker;
pub mod budget;
pub mod client;
pub mod endpoints;
pub mod feed;
pub mod flow;
pub mod guard;

pub mod plan;
pub mod preflight;
pub mod progress;
pub mod ratelimit;
pub mod replay;
pub mod retry;
mod schedule;
pub mod server;
pub mod verdicts;
pub mod writer;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use thiserror::Error;

use crate::config::Config;
use crate::store::rollout::ScoreMeaning;
use crate::store::{RunState, ShardStatus, StoreError, WorkDir};
use crate::verifier::{Sample, Verifier};
use breaker::{Breaker, FailureGroup, FailureLog};
use client::RequestFailure;
use feed::{Feed, Prompt};
use plan::{Policy, PromptState, StepPlan};
use progress::Counters;
use verdicts::{StageCounters, VerdictStage};
use writer::{RolloutRow, WriterConfig};

/// How long requests in flight may finish after Ctrl-C.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// One response of a generation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Choice {
    /// `message.content`.
    pub content: Option<String>,
    /// `reasoning_content` / `reasoning`, when the server split it out.
    pub reasoning: Option<String>,
    /// `finish_reason`.
    pub finish_reason: Option<String>,
    /// Completion tokens of this choice (estimated when `n > 1`).
    pub completion_tokens: Option<u32>,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Choices in order.
    pub choices: Vec<Choice>,
    /// `usage.prompt_tokens`.
    pub prompt_tokens: Option<u32>,
    /// Who answered.
    pub endpoint: String,
    /// Request latency including retries' last attempt.
    pub latency_ms: u64,
}

/// Where responses come from.
#[derive(Debug)]
pub enum Backend {
    /// OpenAI-compatible servers.
    Http(client::HttpBackend),
    /// Saved responses.
    Replay(replay::ReplayBackend),
    /// A provider's batch API.
    Batch(Box<batch::BatchBackend>),
}

impl Backend {
    /// Parks a request with the batch transport when sent (so that a round
    /// is complete once the scheduler has sent what it can); `None` for the
    /// other backends, which send it when its task runs.
    fn park(&self, prompt: &Prompt, rollouts: &[(u32, u32)]) -> Option<batch::Ticket> {
        match self {
            Backend::Batch(b) => Some(b.park(prompt, rollouts)),
            _ => None,
        }
    }

    async fn generate(
        &self,
        prompt: &Prompt,
        n: u32,
        ordinal: u32,
        ticket: Option<batch::Ticket>,
    ) -> Result<Generation, RequestFailure> {
        match self {
            Backend::Batch(b) => match ticket {
                Some(t) => t.await.unwrap_or_else(|_| {
                    Err(RequestFailure::new(
                        "the batch transport stopped".into(),
                        &b.describe(),
                        Some("the batch transport stopped"),
                    ))
                }),
                None => Err(RequestFailure::new(
                    "a batch request was sent without being parked, a bug in rsr".into(),
                    &b.describe(),
                    Some("a bug in rsr"),
                )),
            },
            Backend::Http(h) => h.generate(&prompt.id, &prompt.messages, n, ordinal).await,
            // A replay file that cannot be read fails every request alike.
            Backend::Replay(r) => {
                r.generate(&prompt.id, prompt.shard, n, ordinal)
                    .map_err(|message| {
                        RequestFailure::new(
                            message,
                            r.endpoint(),
                            Some("the replay file cannot be read"),
                        )
                    })
            }
        }
    }
}

/// Errors that stop a sampling run.
#[derive(Debug, Error)]
pub enum SampleError {
    /// Reading inputs or writing rollouts failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A pitfall guard stopped the run (truncated responses, identical
    /// responses, or responses without an answer the verifier can find).
    #[error("{0}")]
    Guard(String),
    /// The writer thread stopped (its own error is reported instead when it
    /// has one).
    #[error("the rollout writer stopped")]
    WriterStopped,
}

/// Why a run stopped before every prompt was finished.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The circuit breaker tripped; the message names the cause.
    ServersFailing(String),
    /// The next request could pass a budget.
    Budget(BudgetStop),
    /// The next round is written for running by hand (`rsr batch export`),
    /// or not needed (`rsr batch import`).
    Paused,
}

/// A stop at a budget: which, what was spent, and a value that would let
/// the run finish.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStop {
    /// The budget's config key, `budget.max_cost` say.
    pub key: &'static str,
    /// Which budget the next request could pass and what was spent.
    pub message: String,
    /// A value of `key` that would let the run finish, as an estimate.
    pub suggested: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct SampleReport {
    /// Totals of this run.
    pub counters: Counters,
    /// Wall time.
    pub elapsed: Duration,
    /// Why the run stopped early, if it did.
    pub stopped: Option<Stop>,
    /// Part files written.
    pub parts: u64,
    /// Failed requests by cause, most frequent first.
    pub failures: Vec<FailureGroup>,
    /// What the verdict stage (by its name) did, when the verifier gives
    /// its verdicts after the response.
    pub verdicts: Option<(&'static str, StageCounters)>,
}

/// Everything [`sample`] needs besides the config.
pub struct SampleContext {
    /// The backend.
    pub backend: Arc<Backend>,
    /// The verifier scoring inline; `None` when the run's verifier calls a
    /// model or votes (rows then have no inline score).
    pub verifier: Option<Arc<dyn Verifier>>,
    /// The verifier whose verdicts arrive after the response (a judge, a
    /// reward model): asked while sampling goes on, its verdicts move the
    /// prompts on as inline ones do. `None` with an inline verifier, and
    /// for the vote (sampled to `max_rollouts`).
    pub stage: Option<Box<dyn VerdictStage>>,
    /// What the verdicts' scores mean: the pass and fail scores the
    /// formatters' early-stop goals default to.
    pub meaning: ScoreMeaning,
    /// Model name recorded in rows.
    pub model: String,
    /// Retry counter shared with the backend.
    pub retries: Arc<AtomicU64>,
    /// No progress bar.
    pub quiet: bool,
}

struct Active {
    prompt: Arc<Prompt>,
    state: PromptState,
    outstanding: usize,
    /// Failed `max_failed_attempts` times in this run: left unfinished.
    given_up: bool,
    /// Rollouts of this step handed to the verdict stage whose verdict has
    /// not arrived, with whether each is valid.
    waiting: Vec<(u32, bool)>,
    /// Saved rollouts of a resumed prompt waiting for their verdicts before
    /// the policy replays them ([`plan::resume`]).
    resuming: Option<Vec<plan::SavedRollout>>,
    /// Folded hashes of its valid responses, for the sampling guard, until
    /// the guard has seen the prompt.
    hashes: Vec<u64>,
    /// The sampling guard has seen (or will never see) this prompt.
    checked: bool,
}

/// What one request brought back.
struct Outcome {
    req: Request,
    /// Finished rollouts (responses, truncated ones included).
    rows: Vec<RolloutRow>,
    /// Rows of rollouts that failed, each with its `(rollout_idx, ordinal)`.
    failed: Vec<(RolloutRow, (u32, u32))>,
    /// Why the rollouts failed, when some did.
    failure: Option<RequestFailure>,
    /// Replay had fewer responses than asked.
    exhausted: bool,
}

#[derive(Debug, Clone)]
struct Request {
    key: u64,
    step: u32,
    /// `(rollout_idx, ordinal)` of each rollout asked for.
    rollouts: Vec<(u32, u32)>,
}

/// Samples every unfinished shard of `wd`. Returns when all prompts are
/// finished, on Ctrl-C / SIGTERM (after flushing), or with an error.
pub async fn sample(
    config: &Config,
    wd: &WorkDir,
    mut ctx: SampleContext,
) -> Result<SampleReport, SampleError> {
    let policy = Policy::from_config(config, &ctx.meaning);
    let names: Vec<&str> = config
        .formatter
        .iter()
        .map(|f| f.name.as_deref().unwrap_or(&f.kind))
        .collect();
    if let Some(why) = policy.cannot_stop_early(&names) {
        tracing::warn!(
            "early stop cannot end a prompt before sampling.max_rollouts: {why}; every prompt gets {} valid rollouts",
            policy.max_rollouts
        );
    }
    let mut stage = ctx.stage.take();
    // Rows a killed run had received become part files before resume reads them.
    crate::store::journal::recover(wd.root(), &|s| wd.owns(s))?;
    let records = wd.state_file();
    let mut state = records.load()?;
    // Prompts the hygiene flags leave out are never fed; a shard whose every
    // prompt left is done.
    let exclusion = crate::hygiene::Exclusion::from_config(&config.data);
    let (remaining, skip) = shards_to_sample(wd, &mut state, exclusion)?;
    let mut counters = Counters {
        prompts_total: remaining.values().sum(),
        prices: config.pricing.sampling(config.sampler.mode),
        ..Counters::default()
    };
    let others = skip.iter().filter(|&&s| !wd.owns(s)).count();
    if skip.len() > others {
        tracing::info!("{} shard(s) already done: skipped", skip.len() - others);
    }
    if let Some(task) = wd.task() {
        tracing::info!(
            "task {task}: {} shard(s) to sample, {others} other tasks'",
            remaining.len()
        );
    }
    let mut feed = Feed::open(&wd.input_path(), wd.root(), policy.clone(), skip, exclusion)?;
    if stage.is_some() {
        feed = feed.with_texts();
    }
    let guards = state.guards.clone();
    let mut budget = run_budget(config, wd, &state)?;

    let writer_cfg = WriterConfig {
        root: wd.root().to_path_buf(),
        state: records.clone(),
        label: ctx
            .verifier
            .is_some()
            .then(|| config.verifier.label().to_string()),
        flush_rows: config.sampling.flush_rows.get(),
        flush_after: Duration::from_secs_f64(config.sampling.flush_seconds),
    };
    let (sink, writer) = writer::start(writer_cfg, state, remaining);

    let mut failures = FailureLog::default();
    let result = schedule::Scheduler::new(schedule::Inputs {
        config,
        policy: &policy,
        ctx: &ctx,
        feed: &mut feed,
        sink: &sink,
        counters: &mut counters,
        failures: &mut failures,
        guards: &guards,
        budget: &mut budget,
        stage: stage.as_mut(),
    })
    .run()
    .await;
    drop(sink);
    let written = writer.join().expect("writer thread panicked");
    // What the stage received is committed whatever stopped the run.
    let finished = stage.as_mut().map(|s| s.finish());
    // A writer failure explains a scheduler that lost its writer: report it first.
    let report = written?;
    records.add_requests(counters.requests, counters.retries, failures.requests())?;
    let verdicts = stage.as_ref().map(|s| (s.name(), s.counters()));
    finished.transpose()?;
    let (stopped, elapsed) = result?;
    Ok(SampleReport {
        counters,
        elapsed,
        stopped,
        parts: report.parts,
        failures: failures.groups(),
        verdicts,
    })
}

/// The prompts left to sample per shard this process samples (those the
/// hygiene flags leave out never are; a shard with none left is marked
/// done) and the shards it skips: those already done, and a task's
/// shards that are other tasks'.
fn shards_to_sample(
    wd: &WorkDir,
    state: &mut RunState,
    exclusion: crate::hygiene::Exclusion,
) -> Result<(HashMap<u32, u64>, HashSet<u32>), SampleError> {
    let excluded = crate::hygiene::excluded_per_shard(&wd.input_path(), exclusion)?;
    let mut remaining: HashMap<u32, u64> = HashMap::new();
    let records = wd.state_file();
    for s in state.shards.clone() {
        if s.status == ShardStatus::Done || !wd.owns(s.shard) {
            continue;
        }
        let left = s.prompts - excluded.get(&s.shard).copied().unwrap_or(0).min(s.prompts);
        if left == 0 {
            records.set_status(state, s.shard, ShardStatus::Done)?;
        } else {
            remaining.insert(s.shard, left);
        }
    }
    let skip: HashSet<u32> = state
        .shards
        .iter()
        .filter(|s| s.status == ShardStatus::Done || !wd.owns(s.shard))
        .map(|s| s.shard)
        .collect();
    let excluded_total: u64 = excluded.values().sum();
    if excluded_total > 0 {
        tracing::info!(
            "{excluded_total} prompts flagged by decontamination or dedup are left out (data.decontaminate.keep / data.dedup.keep keep them)"
        );
    }
    Ok((remaining, skip))
}

/// The run's budgets, with what the work dir spent before (its saved
/// rows, and the judge at its prices) counted; `None` when none is set.
fn run_budget(
    config: &Config,
    wd: &WorkDir,
    state: &RunState,
) -> Result<Option<budget::Budget>, SampleError> {
    if config.budget == crate::config::BudgetConfig::default() {
        return Ok(None);
    }
    // A task's budget bounds the task: its shards' saved spending and its own.
    let shards: Vec<u32> = state
        .shards
        .iter()
        .map(|s| s.shard)
        .filter(|&s| wd.owns(s))
        .collect();
    let earlier = budget::saved_spent(wd.root(), &shards)?;
    let p = &config.pricing.for_mode(config.sampler.mode);
    let judge_cost = match (p.judge_input, p.judge_output) {
        (Some(i), Some(o)) => {
            // Saved answers, a killed run's included (state.json's totals
            // miss what a kill cut short).
            let (prompt_tokens, completion_tokens) = crate::store::judged::spent(wd.root())?;
            budget::Spent {
                requests: 0,
                prompt_tokens,
                completion_tokens,
            }
            .cost(i, o)
        }
        _ => 0.0,
    };
    Ok(budget::Budget::new(
        &config.budget,
        p,
        config.sampler.max_tokens.get(),
        earlier,
        judge_cost,
    ))
}

/// The breaker's message: what failed, how often, where.
fn breaker_message(breaker: &Breaker, failure: &RequestFailure) -> String {
    if let Some(why) = failure.systemic {
        format!(
            "`{}` from {}: {why}, so the run stopped at once",
            failure.cause, failure.endpoint
        )
    } else {
        format!(
            "{} of the last {} requests failed after their retries (sampling.max_failure_rate); last cause: `{}` from {}",
            breaker.failed(),
            breaker.len(),
            failure.cause,
            failure.endpoint
        )
    }
}

/// Queues a step: one request with `n` = its size, or one request per
/// rollout when the server has no `n`.
fn enqueue(queue: &mut VecDeque<Request>, a: &mut Active, key: u64, plan: StepPlan, use_n: bool) {
    if use_n {
        a.outstanding += 1;
        queue.push_back(Request {
            key,
            step: plan.step,
            rollouts: plan.rollouts,
        });
    } else {
        for r in plan.rollouts {
            a.outstanding += 1;
            queue.push_back(Request {
                key,
                step: plan.step,
                rollouts: vec![r],
            });
        }
    }
}

/// A row of `prompt`'s rollout `rollout_idx` with nothing received yet.
fn blank_row(
    prompt: &Prompt,
    model: &Arc<str>,
    rollout_idx: u32,
    step: u32,
    created_at: i64,
) -> RolloutRow {
    RolloutRow {
        id: Arc::clone(&prompt.id),
        rollout_idx,
        step,
        response: None,
        reasoning: None,
        finish_reason: None,
        truncated: false,
        error: None,
        prompt_tokens: None,
        completion_tokens: None,
        latency_ms: None,
        model: Arc::clone(model),
        endpoint: String::new(),
        created_at,
        score: None,
        pred: None,
    }
}

/// Runs a request task; a panic in it (a bug) becomes a failed request for
/// the rollouts it asked for, logged as an error: they are requested again,
/// and past `sampling.max_failed_attempts` the prompt is left unfinished
/// with the panic as the run's stated cause (exit 4), never silently.
async fn caught(
    request: impl std::future::Future<Output = Outcome>,
    prompt: &Prompt,
    asked: Request,
    model: &Arc<str>,
) -> Outcome {
    use futures::FutureExt;
    let panic = match std::panic::AssertUnwindSafe(request).catch_unwind().await {
        Ok(out) => return out,
        Err(panic) => panic,
    };
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    let cause = format!("a request task panicked, a bug in rsr (please report it): {what}");
    tracing::error!("prompt {}: {cause}", prompt.id);
    let created_at = chrono::Utc::now().timestamp_millis();
    let failed = asked
        .rollouts
        .iter()
        .map(|&r| {
            let row = RolloutRow {
                error: Some(cause.clone()),
                ..blank_row(prompt, model, r.0, asked.step, created_at)
            };
            (row, r)
        })
        .collect();
    Outcome {
        req: asked,
        rows: Vec::new(),
        failed,
        failure: Some(RequestFailure::new(cause, "", None)),
        exhausted: false,
    }
}

/// Sends one request and turns its outcome into rows, scored inline.
async fn run_request(
    backend: &Backend,
    prompt: &Prompt,
    req: Request,
    verifier: Option<&dyn Verifier>,
    model: &Arc<str>,
    ticket: Option<batch::Ticket>,
) -> Outcome {
    let n = req.rollouts.len() as u32;
    let ordinal = req.rollouts.first().map_or(0, |r| r.1);
    let outcome = backend.generate(prompt, n, ordinal, ticket).await;
    let created_at = chrono::Utc::now().timestamp_millis();
    let step = req.step;
    let row = |rollout_idx: u32| blank_row(prompt, model, rollout_idx, step, created_at);
    let mut out = Outcome {
        rows: Vec::with_capacity(req.rollouts.len()),
        failed: Vec::new(),
        failure: None,
        exhausted: false,
        req,
    };
    let req = &out.req;
    match outcome {
        Err(f) => {
            out.failed = req
                .rollouts
                .iter()
                .map(|&r| {
                    let failed = RolloutRow {
                        error: Some(f.message.clone()),
                        endpoint: f.endpoint.clone(),
                        ..row(r.0)
                    };
                    (failed, r)
                })
                .collect();
            out.failure = Some(f);
        }
        Ok(g) => {
            let replay = matches!(backend, Backend::Replay(_));
            let mut choices = g.choices.into_iter();
            for &(idx, ordinal) in &req.rollouts {
                let base = RolloutRow {
                    endpoint: g.endpoint.clone(),
                    latency_ms: Some(g.latency_ms),
                    prompt_tokens: g.prompt_tokens,
                    ..row(idx)
                };
                match choices.next() {
                    Some(c) => out.rows.push(score(base, c, prompt, verifier)),
                    None if replay => {
                        out.exhausted = true;
                        break;
                    }
                    None => {
                        let cause = format!("the server returned fewer than n={n} choices");
                        out.failed.push((
                            RolloutRow {
                                error: Some(cause.clone()),
                                ..base
                            },
                            (idx, ordinal),
                        ));
                        out.failure = Some(RequestFailure::new(cause, &g.endpoint, None));
                    }
                }
            }
        }
    }
    out
}

/// Fills a row from a choice and its inline verdict.
fn score(
    mut row: RolloutRow,
    c: Choice,
    prompt: &Prompt,
    verifier: Option<&dyn Verifier>,
) -> RolloutRow {
    let cut = c.finish_reason.as_deref() == Some("length");
    if let (Some(response), Some(gold), Some(verifier)) =
        (c.content.as_deref(), prompt.answer.as_deref(), verifier)
    {
        let verdict = verifier.verify(&Sample {
            response,
            gold,
            metadata: prompt.metadata.as_deref(),
        });
        row.truncated = cut || verdict.unclosed;
        row.score = Some(verdict.score);
        row.pred = verdict.pred;
    } else {
        let unclosed = c
            .content
            .as_deref()
            .is_some_and(|r| crate::verifier::split::split(r).final_part().is_none());
        row.truncated = cut || unclosed;
    }
    row.response = c.content;
    row.reasoning = c.reasoning;
    row.finish_reason = c.finish_reason;
    row.completion_tokens = c.completion_tokens;
    row
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Ctrl-C and SIGTERM, the signals that stop a run after a grace period.
pub(crate) struct Signals {
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Listens for Ctrl-C and SIGTERM.
    pub(crate) fn new() -> Self {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        Self { term }
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    pub(crate) async fn recv(&mut self) {
        let term = async {
            match self.term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_request_becomes_a_failed_request_for_its_rollouts() {
        let prompt = Prompt {
            id: Arc::from("p1"),
            messages: "[]".into(),
            answer: Some("1".into()),
            metadata: None,
            shard: 0,
        };
        let model: Arc<str> = Arc::from("m");
        let asked = Request {
            key: 7,
            step: 2,
            rollouts: vec![(4, 4), (5, 5)],
        };
        let request = async { panic!("index out of bounds") };
        let out = caught(request, &prompt, asked, &model).await;
        assert_eq!(out.req.key, 7);
        assert!(out.rows.is_empty());
        let idx: Vec<(u32, u32)> = out.failed.iter().map(|(_, r)| *r).collect();
        assert_eq!(idx, [(4, 4), (5, 5)]);
        let (row, _) = &out.failed[0];
        assert_eq!((row.rollout_idx, row.step), (4, 2));
        let cause = &out.failure.as_ref().unwrap().cause;
        assert!(
            cause.contains("panicked") && cause.contains("index out of bounds"),
            "{cause}"
        );
        assert_eq!(row.error.as_deref(), Some(cause.as_str()));
    }
}
