//! The judging loop: every saved rollout of a work dir scored by a model
//! verifier, shard by shard, into `scores/<label>/shard_NNNN.parquet`.
//!
//! Each shard's rollouts are planned ([`super::plan`]): settled without a
//! request (no response, unclosed thinking, multiple-choice rules), answered
//! from the saved answers ([`super::cache`]), or asked. Identical requests
//! are sent once. Requests of consecutive shards share one pool of
//! `judge.concurrent_requests` slots, so a shard boundary never drains the
//! pool; a shard's scores file is written when its last answer arrives.
//! Requests go through the sampler's request flow
//! ([`crate::sampler::flow::Flow`]): the same slots, budget admission,
//! breaker and Ctrl-C handling. Failed requests (after the client's
//! retries) leave their rollouts unscored and are asked again next time; a
//! refused key, an unknown model or no server listening stops the run at
//! once, and Ctrl-C stops it after the requests in flight. Memory: the shards open at once (at most
//! [`MAX_OPEN_SHARDS`]), not the work dir.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, SchemaRef};
use futures::StreamExt;
use serde_json::Value;
use thiserror::Error;

use super::{Judged, Outcome, Plan, Row, Spec};
use crate::config::Config;
use crate::sampler::breaker::{Breaker, FailureGroup, FailureLog};
use crate::sampler::budget::Budget;
use crate::sampler::client::{HttpBackend, Reply, RequestFailure};
use crate::sampler::flow::{Admission, Event, Flow};
use crate::sql::columns::{bools, f64s, u32s, utf8};
use crate::store::judged::{self as cache, Record, ShardWriter};
use crate::store::parquet::ParquetFile;
use crate::store::rollout::{self, Validity};
use crate::store::{RunState, StoreError, WorkDir};

/// Shards whose rollouts are held in memory at once.
pub const MAX_OPEN_SHARDS: usize = 4;

/// Errors that stop a judging run.
#[derive(Debug, Error)]
pub enum JudgeError {
    /// Reading the work dir or writing scores failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The query over the saved rollouts failed.
    #[error("reading the saved rollouts: {0}")]
    Sql(#[from] datafusion::error::DataFusionError),
    /// A batch cannot be assembled (a bug).
    #[error("assembling verdicts: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Nothing to judge.
    #[error("{0}")]
    Nothing(String),
}

/// What one judging run did.
#[derive(Debug, Clone, Default)]
pub struct JudgeReport {
    /// Rollouts given a verdict row (shards finished).
    pub scored: u64,
    /// Valid rollouts among them (the run's validity).
    pub valid: u64,
    /// Valid rollouts that pass (score at least the label's pass score).
    pub pass: u64,
    /// Rollouts by how their verdict was reached ([`Outcome::name`]).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Request items answered from saved answers (not sent).
    pub cached: u64,
    /// Request items sent in this run.
    pub sent: u64,
    /// Requests answered in this run.
    pub requests: u64,
    /// Requests that failed after their retries.
    pub failed_requests: u64,
    /// Judge prompt tokens of this run's requests.
    pub prompt_tokens: u64,
    /// Judge completion tokens of this run's requests.
    pub completion_tokens: u64,
    /// Shards whose scores file was written.
    pub shards: u64,
    /// Shards of the work dir.
    pub shards_total: u64,
    /// Why the run stopped before every shard was judged.
    pub stopped: Option<String>,
    /// Failed requests by cause.
    pub failures: Vec<FailureGroup>,
    /// Some answers the parser could not read (for the message).
    pub unparsed_examples: Vec<String>,
    /// Valid rollouts with both an inline verdict and a judge verdict:
    /// [both pass, inline only, judge only, both fail].
    pub agreement: [u64; 4],
    /// Wall time.
    pub elapsed: Duration,
    /// From the first request sent to the last answer: the time requests
    /// were in flight (zero when nothing was sent).
    pub sending: Duration,
    /// The run stopped at `budget.max_cost`: what was spent against it.
    pub budget_stop: Option<crate::sampler::BudgetStop>,
}

/// The judge server and how to address it.
pub struct JudgeContext {
    /// The client (the sampler's type, on the judge's endpoints).
    pub backend: Arc<HttpBackend>,
    /// The judge model's name.
    pub model: String,
    /// `budget.max_cost` at the judge's prices ([`Budget::judging`]), when
    /// it and the prices are set.
    pub budget: Option<Budget>,
    /// Ask again what saved answers hold (the judge or its settings
    /// changed under the same model name); new answers replace them.
    pub refresh: bool,
}

impl JudgeContext {
    /// The same server and model for another loop (the judge stage of
    /// sampling): no budget of its own (the run's covers both sides), saved
    /// answers kept.
    pub fn sharing(&self) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            model: self.model.clone(),
            budget: None,
            refresh: false,
        }
    }
}

/// One saved rollout with its prompt.
#[derive(Debug, Clone)]
struct RowData {
    id: String,
    rollout_idx: u32,
    response: Option<String>,
    reasoning: Option<String>,
    messages: String,
    gold: Option<String>,
    metadata: Option<String>,
    valid: bool,
    inline: Option<f64>,
}

impl RowData {
    fn row(&self) -> Row<'_> {
        Row {
            response: self.response.as_deref(),
            reasoning: self.reasoning.as_deref(),
            messages: &self.messages,
            gold: self.gold.as_deref(),
            metadata: self.metadata.as_deref(),
        }
    }
}

/// One shard being judged.
pub(super) struct ShardWork {
    shard: u32,
    rows: Vec<RowData>,
    plans: Vec<Plan>,
    saved: HashMap<String, Record>,
    failed: HashMap<String, String>,
    /// Batches of `(key, item)` not yet sent.
    queue: VecDeque<Vec<(String, String)>>,
    outstanding: usize,
    writer: ShardWriter,
}

/// A shard being read while requests are in flight.
type Preparing<'a> = Pin<Box<dyn Future<Output = Result<ShardWork, JudgeError>> + 'a>>;

/// An answered (or failed) request: its shard, its items' keys, its
/// prompt's size as the budget estimated it, and the answer.
pub(super) type Done = (
    u32,
    Vec<String>,
    u64,
    Result<Reply<Vec<Answer>>, RequestFailure>,
);

/// One item's answer.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) raw: String,
    pub(super) prompt_tokens: Option<u32>,
    pub(super) completion_tokens: Option<u32>,
}

/// Judges every saved rollout of `wd` with `config.verifier` (a model
/// verifier) on the judge server of `ctx`.
pub async fn judge(
    wd: &WorkDir,
    config: &Config,
    spec: &Spec,
    ctx: &JudgeContext,
) -> Result<JudgeReport, JudgeError> {
    let started = Instant::now();
    let label = config.verifier.label().to_string();
    cache::recover(wd.root(), &|_| true)?;
    let state = RunState::load(&wd.state_path())?;
    let session = crate::sql::session(wd).await?;
    if !session.table_exist("rollouts")? {
        return Err(JudgeError::Nothing(format!(
            "{} has no rollouts yet: run rsr sample first",
            wd.root().display()
        )));
    }
    let breaker = Breaker::new(
        config.sampling.failure_window.get(),
        config.sampling.max_failure_rate,
    );
    let mut run = Judging {
        wd,
        ctx,
        spec,
        shared: Arc::new(spec.clone()),
        session: &session,
        validity: Validity {
            drop_truncated: config.sampler.drop_truncated,
        },
        timeout: Duration::from_secs_f64(config.judge.timeout),
        budget: ctx.budget.clone(),
        slots: config.judge.concurrent_requests.get(),
        flow: Flow::new(
            config.judge.concurrent_requests.get(),
            breaker,
            Duration::from_secs(1),
        ),
        report: JudgeReport {
            shards_total: state.shards.len() as u64,
            ..JudgeReport::default()
        },
        failures: FailureLog::default(),
        shards: state.shards.iter().map(|s| s.shard).collect(),
        open: Vec::new(),
        first_sent: None,
        last_answer: None,
        scores: ScoresOut {
            wd,
            label: &label,
            spec,
            pass_score: spec.pass_score(),
        },
    };
    run.run().await?;
    let Judging {
        mut report,
        open,
        failures,
        first_sent,
        last_answer,
        ..
    } = run;
    // Answers that arrived are kept, whether or not their shard finished.
    for w in open {
        w.writer.commit()?;
    }
    report.failures = failures.groups();
    report.elapsed = started.elapsed();
    if let (Some(first), Some(last)) = (first_sent, last_answer) {
        report.sending = last.duration_since(first);
    }
    save_spend(wd, config, spec, ctx, &label, &report)?;
    Ok(report)
}

/// Adds this run's judge requests and tokens to `state.json`, and writes
/// the label's `verifier.json` ([`record_spend`]).
fn save_spend(
    wd: &WorkDir,
    config: &Config,
    spec: &Spec,
    ctx: &JudgeContext,
    label: &str,
    report: &JudgeReport,
) -> Result<(), JudgeError> {
    wd.state_file().add_judge(
        report.requests,
        report.failed_requests,
        report.prompt_tokens,
        report.completion_tokens,
    )?;
    record_spend(
        wd.root(),
        config,
        spec,
        &ctx.model,
        label,
        (report.prompt_tokens, report.completion_tokens),
    )?;
    Ok(())
}

/// Writes the label's `verifier.json`: what judged, its `(prompt,
/// completion)` tokens added to those of every earlier run that wrote the
/// label, at the prices given now (or those given before).
pub(super) fn record_spend(
    root: &std::path::Path,
    config: &Config,
    spec: &Spec,
    model: &str,
    label: &str,
    (prompt_tokens, completion_tokens): (u64, u64),
) -> Result<(), StoreError> {
    // Sampling tasks add to the same record: one at a time.
    let _held = crate::store::lock::wait_exclusive(
        &rollout::scores_dir(root).join(label).join(".verifier.lock"),
    )?;
    let before = rollout::judge_spend(root, label).unwrap_or_default();
    let p = &config.pricing;
    let prices = p.judge_input.zip(p.judge_output).or(before.prices);
    let mut record = serde_json::json!({
        "type": config.verifier.kind,
        "options": config.verifier.options,
        "judge": {"model": model, "type": config.judge.kind},
        "judge_tokens": {
            "prompt": before.prompt_tokens + prompt_tokens,
            "completion": before.completion_tokens + completion_tokens,
        },
        "pricing": {
            "judge_input": prices.map(|(i, _)| i),
            "judge_output": prices.map(|(_, o)| o),
        },
    });
    spec.meaning().record(&mut record);
    rollout::write_scores_record(root, label, &record)
}

/// One judging run: the open shards and their queued requests, on the
/// request flow the sampler runs on ([`Flow`]: slots, budget, breaker,
/// Ctrl-C).
struct Judging<'a> {
    wd: &'a WorkDir,
    ctx: &'a JudgeContext,
    spec: &'a Spec,
    /// The spec the request tasks hold.
    shared: Arc<Spec>,
    session: &'a datafusion::prelude::SessionContext,
    validity: Validity,
    /// The grace of the requests in flight at a budget stop.
    timeout: Duration,
    budget: Option<Budget>,
    /// `judge.concurrent_requests`.
    slots: usize,
    flow: Flow<Done>,
    report: JudgeReport,
    failures: FailureLog,
    /// Shards not yet read.
    shards: VecDeque<u32>,
    open: Vec<ShardWork>,
    first_sent: Option<Instant>,
    last_answer: Option<Instant>,
    scores: ScoresOut<'a>,
}

impl<'a> Judging<'a> {
    /// Runs until every shard is judged or a stop has drained. The next
    /// shard is read while the requests of the open ones are in flight, so
    /// that reading never leaves the slots idle.
    async fn run(&mut self) -> Result<(), JudgeError> {
        let mut preparing: Option<Preparing<'a>> = None;
        let mut last_log = Instant::now();
        loop {
            self.send_batches();
            if self.flow.stopping() {
                preparing = None;
            } else if preparing.is_none() {
                preparing = self.read_next_shard();
            }
            self.write_finished_shards()?;
            if self.flow.is_idle() && preparing.is_none() {
                if self.flow.stopping() || (self.shards.is_empty() && self.open.is_empty()) {
                    break;
                }
                continue;
            }
            match self.flow.next(preparing.as_mut().map(|p| p.as_mut())).await {
                Event::Other(prepared) => {
                    preparing = None;
                    let w = prepared?;
                    self.report.cached += w.cached_items();
                    self.open.push(w);
                }
                Event::Done(done) => self.on_answer(done)?,
                Event::Interrupted => {
                    self.report.stopped = Some("interrupted".into());
                    self.flow.stop_after(crate::sampler::INTERRUPT_GRACE);
                    tracing::warn!(
                        "interrupted: waiting up to {} s for {} judge request(s) in flight, then saving",
                        crate::sampler::INTERRUPT_GRACE.as_secs(),
                        self.flow.in_flight()
                    );
                }
                Event::Abandoned(left) => {
                    tracing::warn!(
                        "{left} judge request(s) still in flight abandoned; the next run asks them again"
                    );
                    break;
                }
                Event::Tick => {}
            }
            if last_log.elapsed() >= Duration::from_secs(10) {
                last_log = Instant::now();
                let r = &self.report;
                tracing::info!(
                    "judge: {} shard(s) of {} done, {} item(s) sent, {} answered from saved answers, {} request(s) in flight",
                    r.shards,
                    r.shards_total,
                    r.sent,
                    r.cached,
                    self.flow.in_flight()
                );
            }
        }
        Ok(())
    }

    /// Keeps every slot busy with the open shards' queued batches, as far
    /// as the budget allows.
    fn send_batches(&mut self) {
        while self.flow.has_slot() {
            let Some(w) = self.open.iter_mut().find(|w| !w.queue.is_empty()) else {
                break;
            };
            let next = w.queue.front().expect("non-empty queue");
            let prompt_tokens = next.iter().map(|(_, item)| item.len() as u64 / 4).sum();
            match self.flow.admit(self.budget.as_mut(), prompt_tokens, 1) {
                Admission::Send => {}
                Admission::Hold => break,
                Admission::Stop(_) => {
                    let b = self.budget.as_ref().expect("only a budget stops");
                    let (max, spent) = (
                        b.max_cost().unwrap_or_default(),
                        b.cost().unwrap_or_default(),
                    );
                    let worst = b.worst_cost(prompt_tokens, 1).unwrap_or_default();
                    let why = format!(
                        "the next judge request could pass budget.max_cost (${max}); spent ${spent:.4}"
                    );
                    tracing::warn!("stopping at a budget: {why}");
                    self.report.budget_stop = Some(crate::sampler::BudgetStop {
                        key: "budget.max_cost",
                        message: why.clone(),
                        suggested: crate::sampler::budget::round_up(
                            (spent + worst).max(max * 2.0),
                            true,
                        ),
                    });
                    self.report.stopped = Some(why);
                    self.flow.stop_after(self.timeout);
                    break;
                }
            }
            let batch = w.queue.pop_front().expect("non-empty queue");
            w.outstanding += 1;
            self.first_sent.get_or_insert_with(Instant::now);
            let request = request(self.ctx, &self.shared, w.shard, prompt_tokens, batch);
            self.flow.spawn(request);
        }
    }

    /// Starts reading the next shard when the queued work runs low.
    fn read_next_shard(&mut self) -> Option<Preparing<'a>> {
        let queued: usize = self.open.iter().map(|w| w.queue.len()).sum();
        if self.open.len() >= MAX_OPEN_SHARDS || queued >= self.slots {
            return None;
        }
        let shard = self.shards.pop_front()?;
        let (wd, session, spec, ctx) = (self.wd, self.session, self.spec, self.ctx);
        Some(Box::pin(prepare(
            wd,
            session,
            spec,
            ctx,
            shard,
            self.validity,
        )))
    }

    /// Writes the scores of the shards with nothing queued or in flight.
    fn write_finished_shards(&mut self) -> Result<(), JudgeError> {
        if self.flow.stopping() {
            return Ok(());
        }
        let mut i = 0;
        while i < self.open.len() {
            if self.open[i].queue.is_empty() && self.open[i].outstanding == 0 {
                let w = self.open.remove(i);
                self.scores.write(w, &mut self.report)?;
                self.report.shards += 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// Counts an answered request (its answers saved) or a failed one (its
    /// items left unscored; the breaker may stop the run).
    fn on_answer(&mut self, (shard, keys, prompt_tokens, result): Done) -> Result<(), JudgeError> {
        self.last_answer = Some(Instant::now());
        let w = self
            .open
            .iter_mut()
            .find(|w| w.shard == shard)
            .expect("a request's shard is open");
        w.outstanding -= 1;
        let reply = match result {
            Ok(reply) => reply,
            Err(failure) => {
                for key in &keys {
                    w.failed.insert(key.clone(), failure.message.clone());
                }
                self.on_failure(&failure, keys.len(), prompt_tokens);
                return Ok(());
            }
        };
        self.report.requests += 1;
        let tripped = self.flow.observe(false);
        debug_assert!(!tripped);
        let (records, spent) = records(keys, reply, &self.ctx.model);
        let r = &mut self.report;
        r.sent += records.len() as u64;
        r.prompt_tokens += spent.prompt_tokens;
        r.completion_tokens += spent.completion_tokens;
        for record in records {
            w.writer.append(record.clone())?;
            w.saved.insert(record.key.clone(), record);
        }
        if let Some(b) = self.budget.as_mut() {
            b.settle(prompt_tokens, 1, Some(spent));
        }
        Ok(())
    }

    /// Counts a request that failed after its retries: its items stay
    /// unscored (asked again next run); a systemic cause or a tripped
    /// breaker stops the run.
    fn on_failure(&mut self, failure: &RequestFailure, items: usize, prompt_tokens: u64) {
        if let Some(b) = self.budget.as_mut() {
            b.settle(prompt_tokens, 1, None);
        }
        self.report.failed_requests += 1;
        self.failures.record(failure, items);
        let tripped = self.flow.observe(true);
        if let Some(why) = failure_stop(self.flow.breaker(), failure, tripped)
            && !self.flow.stopping()
        {
            self.report.stopped = Some(why);
            self.flow.stop_after(crate::sampler::INTERRUPT_GRACE);
        }
    }
}

/// The answers of a request's items as judge-cache records (a batch's
/// prompt tokens on its first item), and what the request spent.
pub(super) fn records(
    keys: Vec<String>,
    reply: Reply<Vec<Answer>>,
    model: &str,
) -> (Vec<Record>, crate::sampler::budget::Spent) {
    let mut spent = crate::sampler::budget::Spent {
        requests: 1,
        ..Default::default()
    };
    let created_at = chrono::Utc::now().timestamp();
    let records = keys
        .into_iter()
        .zip(reply.value)
        .enumerate()
        .map(|(n, (key, answer))| {
            spent.prompt_tokens += u64::from(answer.prompt_tokens.unwrap_or(0));
            spent.completion_tokens += u64::from(answer.completion_tokens.unwrap_or(0));
            Record {
                key,
                raw: answer.raw,
                prompt_tokens: if n == 0 { answer.prompt_tokens } else { None },
                completion_tokens: answer.completion_tokens,
                latency_ms: reply.latency_ms,
                endpoint: reply.endpoint.clone(),
                model: model.to_string(),
                created_at,
            }
        })
        .collect();
    (records, spent)
}

/// Why a failed judge request stops the run, when it does: a systemic
/// cause (a refused key, an unknown model, nothing listening) or the
/// breaker `tripped` by it.
pub(super) fn failure_stop(
    breaker: &Breaker,
    failure: &RequestFailure,
    tripped: bool,
) -> Option<String> {
    if let Some(why) = &failure.systemic {
        Some(format!(
            "`{}` from {}: {why}",
            failure.cause, failure.endpoint
        ))
    } else if tripped {
        Some(format!(
            "{} of the last {} judge requests failed after their retries (sampling.max_failure_rate); last cause: `{}` from {}",
            breaker.failed(),
            breaker.len(),
            failure.cause,
            failure.endpoint
        ))
    } else {
        None
    }
}

/// The request of one batch of items, as a task for the flow.
pub(super) fn request(
    ctx: &JudgeContext,
    spec: &Arc<Spec>,
    shard: u32,
    prompt_tokens: u64,
    batch: Vec<(String, String)>,
) -> impl Future<Output = Done> + Send + 'static {
    let backend = Arc::clone(&ctx.backend);
    let spec = Arc::clone(spec);
    let model = ctx.model.clone();
    async move {
        let (keys, items): (Vec<String>, Vec<String>) = batch.into_iter().unzip();
        let n = items.len();
        let result = match &*spec {
            Spec::Reward { api, .. } => {
                let refs: Vec<&str> = items.iter().map(String::as_str).collect();
                let body = super::reward::body(*api, &model, &refs);
                let api = *api;
                backend
                    .post(spec.route(), &body, |text| {
                        super::reward::parse(api, text, n).map(|rewards| {
                            rewards
                                .into_iter()
                                .map(|r| Answer {
                                    raw: format!("{r}"),
                                    prompt_tokens: None,
                                    completion_tokens: None,
                                })
                                .collect()
                        })
                    })
                    .await
            }
            _ => {
                let logprobs = matches!(
                    &*spec,
                    Spec::Judge {
                        score: super::ScoreMode::Logprobs,
                        ..
                    }
                );
                backend
                    .post(spec.route(), &items[0], |text| {
                        parse_chat(text, logprobs).map(|a| vec![a])
                    })
                    .await
            }
        };
        (shard, keys, prompt_tokens, result)
    }
}

/// A judge's chat answer: its text (with its thinking, when the server
/// split it out, put back in `<think>` tags for the parser to skip), or in
/// logprob mode its first token's `top_logprobs`.
fn parse_chat(text: &str, logprobs: bool) -> Result<Answer, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("no choices")?;
    let message = choice.get("message").ok_or("a choice without a message")?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let reasoning = message
        .get("reasoning_content")
        .or_else(|| message.get("reasoning"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    let raw = if logprobs {
        let top = choice
            .get("logprobs")
            .and_then(|l| l.get("content"))
            .and_then(|c| c.get(0))
            .and_then(|t| t.get("top_logprobs"))
            .and_then(Value::as_array)
            .map(|top| {
                // Only what the score is read from (servers add ids, bytes).
                top.iter()
                    .map(|t| serde_json::json!({"token": t.get("token"), "logprob": t.get("logprob")}))
                    .collect::<Vec<_>>()
            })
            .map_or(Value::Null, Value::Array);
        serde_json::json!({"text": content, "top_logprobs": top}).to_string()
    } else {
        match reasoning {
            Some(r) => format!("<think>{r}</think>{content}"),
            None => content.to_string(),
        }
    };
    let usage = |k: &str| {
        v.get("usage")
            .and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    Ok(Answer {
        raw,
        prompt_tokens: usage("prompt_tokens"),
        completion_tokens: usage("completion_tokens"),
    })
}

impl ShardWork {
    /// The batches of `(key, item)` the shard must ask.
    pub(super) fn into_queue(self) -> VecDeque<Vec<(String, String)>> {
        self.queue
    }

    /// Items answered from saved answers.
    fn cached_items(&self) -> u64 {
        let mut seen = std::collections::HashSet::new();
        self.plans
            .iter()
            .filter_map(|p| match p {
                Plan::Ask { key, .. } if self.saved.contains_key(key) => Some(key),
                _ => None,
            })
            .filter(|k| seen.insert(*k))
            .count() as u64
    }
}

/// Reads a shard's rollouts, plans them, and queues what must be asked.
pub(super) async fn prepare(
    wd: &WorkDir,
    session: &datafusion::prelude::SessionContext,
    spec: &Spec,
    ctx: &JudgeContext,
    shard: u32,
    validity: Validity,
) -> Result<ShardWork, JudgeError> {
    let query = format!(
        "SELECT r.id, r.rollout_idx, r.response, r.reasoning, r.score AS inline_score, \
         {} AS valid, i.messages, i.answer, i.metadata \
         FROM rollouts r JOIN inputs i ON r.id = i.id \
         WHERE i.shard = {shard} AND r.error IS NULL \
         ORDER BY r.id, r.rollout_idx",
        validity.sql("r"),
    );
    let mut stream = session.sql(&query).await?.execute_stream().await?;
    let mut rows = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let (id, response, reasoning, messages, answer, metadata) = (
            utf8(&batch, "id")?,
            utf8(&batch, "response")?,
            utf8(&batch, "reasoning")?,
            utf8(&batch, "messages")?,
            utf8(&batch, "answer")?,
            utf8(&batch, "metadata")?,
        );
        let idx = u32s(&batch, "rollout_idx")?;
        let inline = f64s(&batch, "inline_score")?;
        let valid = bools(&batch, "valid");
        let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
        for i in 0..batch.num_rows() {
            rows.push(RowData {
                id: id.value(i).to_string(),
                rollout_idx: idx.value(i),
                response: opt(&response, i),
                reasoning: opt(&reasoning, i),
                messages: messages.value(i).to_string(),
                gold: opt(&answer, i),
                metadata: opt(&metadata, i),
                valid: valid.is_valid(i) && valid.value(i),
                inline: inline.is_valid(i).then(|| inline.value(i)),
            });
        }
    }
    let body = |messages: &str| ctx.backend.chat_body(messages, 1);
    let plans: Vec<Plan> = rows
        .iter()
        .map(|r| super::plan(spec, &r.row(), &body, &ctx.model))
        .collect();
    let saved = cache::load(wd.root(), shard)?;
    let mut seen = std::collections::HashSet::new();
    let mut pending: Vec<(String, String)> = Vec::new();
    for p in &plans {
        if let Plan::Ask { key, item } = p
            && (ctx.refresh || !saved.contains_key(key))
            && seen.insert(key.clone())
        {
            pending.push((key.clone(), item.clone()));
        }
    }
    let size = spec.batch_size();
    let mut queue = VecDeque::new();
    let mut iter = pending.into_iter().peekable();
    while iter.peek().is_some() {
        queue.push_back(iter.by_ref().take(size).collect());
    }
    Ok(ShardWork {
        shard,
        rows,
        plans,
        saved,
        failed: HashMap::new(),
        queue,
        outstanding: 0,
        writer: ShardWriter::open(wd.root(), shard)?,
    })
}

/// Where and how a finished shard's verdicts are written.
struct ScoresOut<'a> {
    wd: &'a WorkDir,
    label: &'a str,
    spec: &'a Spec,
    pass_score: f64,
}

/// The columns of a model verifier's scores: the rule verifiers' five, then
/// how each verdict was reached and what the judge said.
pub fn judge_score_schema() -> SchemaRef {
    rollout::score_schema_with([
        Field::new("outcome", DataType::Utf8, true),
        Field::new("judge_raw", DataType::Utf8, true),
        Field::new("judge_prompt_tokens", DataType::UInt32, true),
        Field::new("judge_completion_tokens", DataType::UInt32, true),
        Field::new("judge_latency_ms", DataType::UInt64, true),
        Field::new("judge_error", DataType::Utf8, true),
    ])
}

impl ScoresOut<'_> {
    fn write(&self, w: ShardWork, report: &mut JudgeReport) -> Result<(), JudgeError> {
        let n = w.rows.len();
        let mut score = Vec::with_capacity(n);
        let mut pred: Vec<Option<String>> = Vec::with_capacity(n);
        let mut outcome = Vec::with_capacity(n);
        let mut raw: Vec<Option<String>> = Vec::with_capacity(n);
        let mut ptok = Vec::with_capacity(n);
        let mut ctok = Vec::with_capacity(n);
        let mut lat = Vec::with_capacity(n);
        let mut err: Vec<Option<String>> = Vec::with_capacity(n);
        for (row, plan) in w.rows.iter().zip(&w.plans) {
            let (judged, record, error) = match plan {
                Plan::Settled(j) => (j.clone(), None, None),
                Plan::Ask { key, .. } => match (w.saved.get(key), w.failed.get(key)) {
                    (Some(r), _) => (
                        super::read_answer(self.spec, &r.raw, &row.row()),
                        Some(r),
                        None,
                    ),
                    (None, Some(e)) => (
                        Judged {
                            score: None,
                            pred: None,
                            outcome: Outcome::Failed,
                        },
                        None,
                        Some(e.clone()),
                    ),
                    (None, None) => {
                        unreachable!("a finished shard has every request answered or failed")
                    }
                },
            };
            if judged.outcome == Outcome::Unparsed
                && report.unparsed_examples.len() < 3
                && let Some(r) = record
                && !report.unparsed_examples.contains(&short(&r.raw))
            {
                report.unparsed_examples.push(short(&r.raw));
            }
            *report.outcomes.entry(judged.outcome.name()).or_default() += 1;
            report.scored += 1;
            if row.valid {
                report.valid += 1;
                let judge_pass = judged.score.map(|s| s >= self.pass_score);
                report.pass += u64::from(judge_pass == Some(true));
                if let (Some(inline), Some(judge)) = (row.inline, judge_pass) {
                    let rules = inline >= crate::store::rollout::PASS_SCORE;
                    report.agreement[match (rules, judge) {
                        (true, true) => 0,
                        (true, false) => 1,
                        (false, true) => 2,
                        (false, false) => 3,
                    }] += 1;
                }
            }
            score.push(judged.score);
            pred.push(judged.pred);
            outcome.push(judged.outcome.name());
            raw.push(record.map(|r| r.raw.clone()));
            ptok.push(record.and_then(|r| r.prompt_tokens));
            ctok.push(record.and_then(|r| r.completion_tokens));
            lat.push(record.map(|r| r.latency_ms));
            err.push(error);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                w.rows.iter().map(|r| r.id.as_str()),
            )),
            Arc::new(UInt32Array::from_iter_values(
                w.rows.iter().map(|r| r.rollout_idx),
            )),
            Arc::new(Float64Array::from(score)),
            Arc::new(StringArray::from(pred)),
            Arc::new(StringArray::from(vec![self.label; n])),
            Arc::new(StringArray::from(outcome)),
            Arc::new(StringArray::from(raw)),
            Arc::new(UInt32Array::from(ptok)),
            Arc::new(UInt32Array::from(ctok)),
            Arc::new(UInt64Array::from(lat)),
            Arc::new(StringArray::from(err)),
        ];
        let batch = RecordBatch::try_new(judge_score_schema(), columns)?;
        let path = rollout::score_path(self.wd.root(), self.label, w.shard);
        let mut file = ParquetFile::create(&path, judge_score_schema())?;
        file.write(&batch)?;
        file.commit()?;
        w.writer.commit()?;
        Ok(())
    }
}

/// The first 200 characters of `s`, on one line.
fn short(s: &str) -> String {
    let one_line = s.replace('\n', " ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_answers_keep_text_thinking_or_logprobs() {
        let body = r#"{"choices":[{"message":{"content":"Yes","reasoning_content":"hmm"},
            "logprobs":{"content":[{"token":"Yes","logprob":-0.1,"top_logprobs":[{"token":"Yes","logprob":-0.1},{"token":"No","logprob":-2.4}]}]}}],
            "usage":{"prompt_tokens":120,"completion_tokens":1}}"#;
        let a = parse_chat(body, false).unwrap();
        assert_eq!(a.raw, "<think>hmm</think>Yes");
        assert_eq!((a.prompt_tokens, a.completion_tokens), (Some(120), Some(1)));
        let a = parse_chat(body, true).unwrap();
        let v: Value = serde_json::from_str(&a.raw).unwrap();
        assert_eq!(v["top_logprobs"][1]["token"], "No");
        assert!(parse_chat("{}", false).is_err());
    }
}
