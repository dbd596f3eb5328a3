//! The scheduler: one loop that admits prompts, sends their requests and
//! reacts to what comes back, written as a type whose steps can be read one
//! by one. A step of it never blocks: it moves prompts between the feed,
//! the queue of requests, the requests in flight and the writer.
//!
//! - [`Scheduler::admit_prompts`]: prompts from the feed, up to
//!   `sampling.concurrent_prompts`, each with its first (or resumed) step;
//! - [`Scheduler::send_requests`]: queued requests, up to
//!   `sampler.concurrent_requests`;
//! - [`Scheduler::on_outcome`]: a finished request's rows to the writer,
//!   the prompt's state, the truncation guard and the circuit breaker, its
//!   failed rollouts queued again, its next step or its end;
//! - with a verifier whose verdicts come after the response
//!   ([`super::verdicts`]): each finished rollout handed to the stage,
//!   [`Scheduler::on_verdicts`] moving a prompt on once its step has every
//!   verdict, and no new sampling request while
//!   `sampling.max_pending_verdicts` rollouts wait for theirs;
//! - [`Scheduler::begin_stop`]: no new prompts or requests; those in flight
//!   get [`INTERRUPT_GRACE`] to finish.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::breaker::{Breaker, FailureLog};
use super::feed::Feed;
use super::feed::Next;
use super::flow::{Admission, Event, Flow};
use super::guard::{AnswerGuard, IdenticalGuard, TruncationGuard};
use super::plan::{self, Policy, SavedRollout};
use super::progress::{Counters, Progress};
use super::verdicts::{Rollout, StageEvent, Verdict, VerdictStage};
use super::writer::{RolloutRow, Sink, WriterMsg};
use super::{
    Active, INTERRUPT_GRACE, Outcome, Request, SampleContext, SampleError, Stop, breaker_message,
    caught, enqueue, run_request,
};
use crate::config::Config;
use crate::store::rollout::PASS_SCORE;
use crate::store::state::GuardRecord;

/// Prompts sampled at once: `sampling.concurrent_prompts`, or a round's
/// (`sampler.batch.round_prompts`) through a batch API.
fn prompt_slots(config: &Config) -> usize {
    match config.sampler.mode {
        crate::config::SamplerMode::Online => config.sampling.concurrent_prompts.get(),
        crate::config::SamplerMode::Batch => config.sampler.batch.round_prompts.get(),
    }
}

/// Requests in flight at once: `sampler.concurrent_requests`, or through a
/// batch API every request of a round (a step of each of its prompts).
fn request_slots(config: &Config) -> usize {
    match config.sampler.mode {
        crate::config::SamplerMode::Online => config.sampler.concurrent_requests.get(),
        crate::config::SamplerMode::Batch => {
            let per_step = if config.sampler.sends_n() {
                1
            } else {
                config.sampling.step_size.get()
            };
            prompt_slots(config) * per_step
        }
    }
}

/// What a scheduler works with and reports into.
pub(super) struct Inputs<'a> {
    pub config: &'a Config,
    pub policy: &'a Policy,
    pub ctx: &'a SampleContext,
    pub feed: &'a mut Feed,
    pub sink: &'a Sink,
    pub counters: &'a mut Counters,
    pub failures: &'a mut FailureLog,
    /// The guards' records saved by earlier runs of the work dir.
    pub guards: &'a BTreeMap<String, GuardRecord>,
    /// The run's budgets, when any is set.
    pub budget: &'a mut Option<super::budget::Budget>,
    /// The verifier whose verdicts come after the response, if the run's
    /// does.
    pub stage: Option<&'a mut Box<dyn VerdictStage>>,
}

/// The state of one sampling run's loop.
pub(super) struct Scheduler<'a> {
    io: Inputs<'a>,
    model: Arc<str>,
    truncation: Option<TruncationGuard>,
    identical: Option<IdenticalGuard>,
    answers: Option<AnswerGuard>,
    flow: Flow<Outcome>,
    progress: Progress,
    /// Prompts being sampled, by key.
    active: HashMap<u64, Active>,
    /// Requests waiting for a slot.
    queue: VecDeque<Request>,
    next_key: u64,
    feed_done: bool,
    /// Why the run stops early, once it does.
    stop: Option<Stop>,
    /// `sampling.max_pending_verdicts`.
    max_pending: usize,
}

impl<'a> Scheduler<'a> {
    /// A scheduler over `io.feed`, sending rows through `io.sink`.
    pub(super) fn new(io: Inputs<'a>) -> Self {
        let (config, ctx) = (io.config, io.ctx);
        // A guard runs unless switched off or already passed in an earlier
        // run of this work dir.
        let runs =
            |name: &str, allowed: bool| !allowed && io.guards.get(name).is_none_or(|r| r.fired);
        let s = &config.sampling;
        let truncation = runs("truncation", s.allow_truncation)
            .then(|| TruncationGuard::new(s.truncation_window.get(), s.max_truncation_rate));
        // Not for runs that ask for one response per prompt.
        let identical = (runs("identical", s.allow_identical) && io.policy.max_rollouts >= 2)
            .then(|| IdenticalGuard::new(s.identical_window.get(), s.max_identical_rate));
        let answers = (runs("no_answer", s.allow_no_answer)
            && ctx.verifier.as_ref().is_some_and(|v| v.needs_gold()))
        .then(|| AnswerGuard::new(s.no_answer_window.get(), s.max_no_answer_rate));
        let breaker = Breaker::new(
            config.sampling.failure_window.get(),
            config.sampling.max_failure_rate,
        );
        let progress = Progress::new(io.counters.prompts_total, ctx.quiet);
        Self {
            io,
            model: Arc::from(ctx.model.as_str()),
            truncation,
            identical,
            answers,
            flow: Flow::new(request_slots(config), breaker, Duration::from_millis(500)),
            progress,
            active: HashMap::new(),
            queue: VecDeque::new(),
            next_key: 0,
            feed_done: false,
            stop: None,
            max_pending: config.sampling.max_pending_verdicts.get(),
        }
    }

    /// Runs until every prompt is finished, a stop has drained, or an error;
    /// returns why it stopped early (if it did) and how long it ran.
    pub(super) async fn run(mut self) -> Result<(Option<Stop>, Duration), SampleError> {
        loop {
            self.admit_prompts()?;
            self.send_requests();
            self.send_verdict_requests();
            self.seal_round()?;
            let idle = self.flow.is_idle() && self.io.stage.as_ref().is_none_or(|s| s.is_idle());
            let drained = self.feed_done && self.queue.is_empty() && self.pending_verdicts() == 0;
            if idle && (self.stopping() || drained) {
                break;
            }
            let event = match self.io.stage.as_mut() {
                Some(stage) => {
                    let mut next = stage.next();
                    self.flow.next(Some(next.as_mut())).await
                }
                None => {
                    self.flow
                        .next::<std::future::Pending<StageEvent>>(None)
                        .await
                }
            };
            match event {
                Event::Done(out) => self.on_outcome(out)?,
                Event::Other(StageEvent::Verdicts(verdicts)) => self.on_verdicts(verdicts)?,
                Event::Other(StageEvent::Error(e)) => return Err(e.into()),
                Event::Other(StageEvent::Failing(message)) => {
                    if self.stop.is_none() {
                        tracing::error!("stopping: {message}");
                        self.begin_stop(Stop::ServersFailing(message));
                    }
                }
                Event::Interrupted | Event::Other(StageEvent::Interrupted) => {
                    if !self.stopping() {
                        self.begin_stop(Stop::Interrupted);
                        tracing::warn!(
                            "interrupted: waiting up to {} s for {} request(s) in flight, then saving",
                            INTERRUPT_GRACE.as_secs(),
                            self.flow.in_flight() + self.verdict_counters().in_flight as usize
                        );
                    }
                }
                Event::Abandoned(left) => {
                    if self.stop != Some(Stop::Paused) {
                        tracing::warn!(
                            "{left} request(s) still in flight abandoned; a resume requests them again"
                        );
                    }
                    if let Some(stage) = self.io.stage.as_mut() {
                        stage.abort();
                    }
                    break;
                }
                Event::Other(StageEvent::Abandoned(left)) => {
                    let name = self.io.stage.as_ref().map_or("verdict", |s| s.name());
                    tracing::warn!(
                        "{left} {name} request(s) still in flight abandoned; a resume asks them again"
                    );
                }
                Event::Other(StageEvent::Tick) | Event::Tick => {}
            }
            self.io.counters.retries = self.io.ctx.retries.load(Ordering::Relaxed);
            self.io.counters.verdicts = self.io.stage.as_ref().map(|s| (s.name(), s.counters()));
            self.progress.update(self.io.counters);
        }
        self.io.counters.retries = self.io.ctx.retries.load(Ordering::Relaxed);
        self.io.counters.verdicts = self.io.stage.as_ref().map(|s| (s.name(), s.counters()));
        let elapsed = self.progress.elapsed();
        self.progress.finish();
        // What was spent, once the requests in flight have finished.
        if let (Some(Stop::Budget(stop)), Some(b)) = (&mut self.stop, self.io.budget.as_ref()) {
            stop.message = format!(
                "the next request could pass {}; {}",
                stop.message,
                b.report()
            );
            stop.suggested = b.suggest(stop.key, self.io.counters.projection());
        }
        Ok((self.stop, elapsed))
    }

    /// With the batch transport: once nothing more can be sent and every
    /// verdict is in, the parked requests are the next round.
    fn seal_round(&mut self) -> Result<(), SampleError> {
        let super::Backend::Batch(b) = self.io.ctx.backend.as_ref() else {
            return Ok(());
        };
        let verdicts_out =
            self.pending_verdicts() > 0 || self.io.stage.as_ref().is_some_and(|s| !s.is_idle());
        if !verdicts_out
            && !self.stopping()
            && b.seal(self.flow.in_flight())? == super::batch::Sealed::Pause
        {
            self.begin_stop(Stop::Paused);
        }
        Ok(())
    }

    /// Rollouts waiting for a verdict from the stage.
    fn pending_verdicts(&self) -> usize {
        self.io.stage.as_ref().map_or(0, |s| s.pending())
    }

    fn verdict_counters(&self) -> super::verdicts::StageCounters {
        self.io
            .stage
            .as_ref()
            .map(|s| s.counters())
            .unwrap_or_default()
    }

    /// Lets the verdict stage send what it has queued, as far as the budget
    /// allows; a stage request that can never fit stops the run once the
    /// sampling requests have settled too.
    fn send_verdict_requests(&mut self) {
        let Some(stage) = self.io.stage.as_mut() else {
            return;
        };
        let Some(cap) = stage.send(self.io.budget.as_mut()) else {
            return;
        };
        if self.flow.is_idle() && !self.stopping() {
            tracing::warn!(
                "stopping at a budget: the next request could pass {}",
                cap.detail
            );
            self.begin_stop(Stop::Budget(super::BudgetStop {
                key: cap.key,
                message: cap.detail,
                suggested: String::new(),
            }));
        }
    }

    /// Whether the run is stopping (no new prompts or requests).
    fn stopping(&self) -> bool {
        self.flow.stopping()
    }

    /// Stops taking new work; requests in flight get [`INTERRUPT_GRACE`]
    /// (at a budget, `sampler.timeout`: they are paid for). The first
    /// reason to stop is the one reported.
    fn begin_stop(&mut self, why: Stop) {
        let grace = match why {
            Stop::Budget(_) => Duration::from_secs_f64(self.io.config.sampler.timeout),
            // Parked requests were never sent: nothing to wait for.
            Stop::Paused => Duration::ZERO,
            _ => INTERRUPT_GRACE,
        };
        self.stop.get_or_insert(why);
        self.flow.stop_after(grace);
        if let Some(stage) = self.io.stage.as_mut() {
            stage.stop_after(grace);
        }
    }

    /// A request's prompt tokens as the budget estimates them (about four
    /// bytes a token) and the responses it asks for.
    fn budget_size(&self, req: &Request) -> (u64, u64) {
        let prompt = &self.active[&req.key].prompt;
        (prompt.messages.len() as u64 / 4, req.rollouts.len() as u64)
    }

    fn send(&self, msg: WriterMsg) -> Result<(), SampleError> {
        self.io.sink.send(msg)
    }

    /// Takes prompts from the feed up to `sampling.concurrent_prompts` and
    /// queues their first (or resumed) step; a prompt the saved rows already
    /// finish is done at once.
    pub(super) fn admit_prompts(&mut self) -> Result<(), SampleError> {
        let max_prompts = prompt_slots(self.io.config);
        while !self.stopping() && !self.feed_done && self.active.len() < max_prompts {
            let Some(Next {
                prompt,
                saved,
                texts,
            }) = self.io.feed.next_prompt()?
            else {
                self.feed_done = true;
                break;
            };
            let key = self.next_key;
            self.next_key += 1;
            let a = Active {
                prompt: Arc::new(prompt),
                state: plan::PromptState::default(),
                outstanding: 0,
                given_up: false,
                waiting: Vec::new(),
                resuming: None,
                hashes: Vec::new(),
                checked: self.identical.is_none(),
            };
            self.active.insert(key, a);
            match self.io.stage.as_mut() {
                // The saved rollouts' verdicts first (saved answers, or asked
                // from their text): the policy replays them with their scores.
                Some(stage) if !texts.is_empty() => {
                    let rollouts: Vec<Rollout<'_>> = texts.iter().map(Rollout::from).collect();
                    let a = self.active.get_mut(&key).expect("inserted above");
                    let ready = stage.submit(key, &a.prompt, &rollouts)?;
                    a.waiting = texts.iter().map(|t| (t.rollout_idx, false)).collect();
                    a.resuming = Some(saved);
                    self.on_verdicts(ready)?;
                }
                _ => self.resume_prompt(key, saved)?,
            }
        }
        Ok(())
    }

    /// Replays a prompt's saved rollouts through the policy and queues its
    /// interrupted or next step; a prompt they finish is done at once.
    fn resume_prompt(&mut self, key: u64, saved: Vec<SavedRollout>) -> Result<(), SampleError> {
        let (state, pending) = plan::resume(self.io.policy, saved);
        let a = self.active.get_mut(&key).expect("an active prompt");
        a.state = state;
        match pending.or_else(|| a.state.start_step(self.io.policy)) {
            Some(p) => enqueue(&mut self.queue, a, key, p, self.io.config.sampler.sends_n()),
            None => {
                let shard = a.prompt.shard;
                self.active.remove(&key);
                self.io.counters.prompts_done += 1;
                self.io.counters.prompts_resumed += 1;
                self.send(WriterMsg::PromptDone(shard))?;
            }
        }
        Ok(())
    }

    /// Counts verdicts that arrived: a resumed prompt replays its saved
    /// rollouts once all of theirs are in; a prompt whose step has every
    /// verdict (and nothing in flight) moves on.
    pub(super) fn on_verdicts(&mut self, verdicts: Vec<Verdict>) -> Result<(), SampleError> {
        let pass = self
            .io
            .stage
            .as_ref()
            .map_or(PASS_SCORE, |s| s.pass_score());
        let mut ready = Vec::new();
        for v in verdicts {
            // A prompt given up or stopped may have gone.
            let Some(a) = self.active.get_mut(&v.prompt) else {
                continue;
            };
            let Some(i) = a.waiting.iter().position(|w| w.0 == v.rollout_idx) else {
                continue;
            };
            let (_, valid) = a.waiting.swap_remove(i);
            match a.resuming.as_mut() {
                Some(saved) => {
                    if let Some(r) = saved.iter_mut().find(|r| r.rollout_idx == v.rollout_idx) {
                        r.score = v.score;
                    }
                }
                None => {
                    a.state.record(valid, v.score);
                    let passed = valid && v.score.is_some_and(|s| s >= pass);
                    self.io.counters.passed += u64::from(passed);
                }
            }
            if a.waiting.is_empty() {
                ready.push(v.prompt);
            }
        }
        for key in ready {
            let Some(a) = self.active.get_mut(&key) else {
                continue;
            };
            match a.resuming.take() {
                Some(saved) => self.resume_prompt(key, saved)?,
                None => self.advance(key)?,
            }
        }
        Ok(())
    }

    /// Sends queued requests while slots are free and the budgets allow.
    /// With a verdict stage, no request goes while
    /// `sampling.max_pending_verdicts` rollouts wait for their verdict.
    pub(super) fn send_requests(&mut self) {
        while self.flow.has_slot() {
            let Some(req) = self.queue.front() else {
                break;
            };
            if self.pending_verdicts() >= self.max_pending {
                break;
            }
            let (prompt_tokens, n) = self.budget_size(req);
            let stage_busy = self.io.stage.as_ref().is_some_and(|s| !s.is_idle());
            match self.flow.admit(self.io.budget.as_mut(), prompt_tokens, n) {
                Admission::Send => {}
                Admission::Hold => break,
                // The stage's requests in flight settle first.
                Admission::Stop(_) if stage_busy => break,
                Admission::Stop(which) => {
                    tracing::warn!(
                        "stopping at a budget: the next request could pass {}",
                        which.detail
                    );
                    self.begin_stop(Stop::Budget(super::BudgetStop {
                        key: which.key,
                        message: which.detail,
                        suggested: String::new(),
                    }));
                    break;
                }
            }
            let req = self.queue.pop_front().expect("peeked above");
            let prompt = Arc::clone(&self.active[&req.key].prompt);
            let verifier = self.io.ctx.verifier.clone();
            let model = Arc::clone(&self.model);
            let backend = Arc::clone(&self.io.ctx.backend);
            let ticket = backend.park(&prompt, &req.rollouts);
            self.flow.spawn(async move {
                let asked = req.clone();
                let request =
                    run_request(&backend, &prompt, req, verifier.as_deref(), &model, ticket);
                caught(request, &prompt, asked, &model).await
            });
        }
    }

    /// Counts a finished request's rows against its prompt and the guards,
    /// hands every row to the writer, and moves the prompt on: failed
    /// rollouts queued again (or the prompt given up), its next step, or its
    /// end.
    pub(super) fn on_outcome(&mut self, out: Outcome) -> Result<(), SampleError> {
        let key = out.req.key;
        self.io.counters.requests += 1;
        if let Some(first) = out.rows.first() {
            self.io.counters.prompt_tokens += u64::from(first.prompt_tokens.unwrap_or(0));
        }
        if self.io.budget.is_some() {
            let (prompt_tokens, n) = self.budget_size(&out.req);
            let spent = (!out.rows.is_empty()).then(|| super::budget::Spent {
                requests: 1,
                prompt_tokens: out.rows[0].prompt_tokens.map_or(prompt_tokens, u64::from),
                completion_tokens: out
                    .rows
                    .iter()
                    .map(|r| u64::from(r.completion_tokens.unwrap_or(0)))
                    .sum(),
            });
            if let Some(b) = self.io.budget.as_mut() {
                b.settle(prompt_tokens, n, spent);
            }
        }
        let (failed_rows, failed): (Vec<RolloutRow>, Vec<(u32, u32)>) =
            out.failed.into_iter().unzip();
        let guard_stop = self.record_rows(key, &out.rows);
        let ready = self.submit_rows(key, &out.rows)?;
        let shard = self.active[&key].prompt.shard;
        // Every row reaches the writer's journal, the failed ones too.
        let mut rows = out.rows;
        rows.extend(failed_rows);
        if !rows.is_empty() {
            self.io.sink.rows(shard, rows)?;
        }
        if let Some(message) = guard_stop? {
            return Err(self.guard_stop(message));
        }
        // Verdicts known at once; the prompt still has this request
        // outstanding, so it moves on below, not here.
        self.on_verdicts(ready)?;
        let a = self
            .active
            .get_mut(&key)
            .expect("request of an active prompt");
        a.outstanding -= 1;
        if out.exhausted {
            a.state.mark_exhausted();
        }
        if let Some(f) = &out.failure {
            self.io.counters.errors += failed.len() as u64;
            self.io.failures.record(f, failed.len());
            tracing::debug!("request for prompt {} failed: {}", a.prompt.id, f.message);
        }
        let tripped = self.flow.observe(out.failure.is_some());
        if let Some(f) = out
            .failure
            .as_ref()
            .filter(|f| (f.systemic.is_some() || tripped) && self.stop.is_none())
        {
            let message = breaker_message(self.flow.breaker(), f);
            tracing::error!("stopping: {message}");
            self.begin_stop(Stop::ServersFailing(message));
        }
        if !failed.is_empty() {
            let stopping = self.stopping();
            let a = self
                .active
                .get_mut(&key)
                .expect("request of an active prompt");
            if !stopping && a.state.record_failure(self.io.policy) {
                a.outstanding += 1;
                self.queue.push_back(Request {
                    key,
                    step: out.req.step,
                    rollouts: failed,
                });
            } else {
                a.given_up = true;
            }
        }
        self.advance(key)
    }

    /// Hands a request's finished rollouts to the verdict stage, when the
    /// run has one; returns the verdicts it knew at once.
    fn submit_rows(&mut self, key: u64, rows: &[RolloutRow]) -> Result<Vec<Verdict>, SampleError> {
        let Some(stage) = self.io.stage.as_mut() else {
            return Ok(Vec::new());
        };
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let rollouts: Vec<Rollout<'_>> = rows.iter().map(Rollout::from).collect();
        Ok(stage.submit(key, &self.active[&key].prompt, &rollouts)?)
    }

    /// Records a request's finished rollouts in its prompt's state (or, when
    /// their verdicts come later, as waiting for them), the counters and
    /// the truncation and extraction guards; returns a guard's message when
    /// one fires (its figures are saved either way).
    fn record_rows(
        &mut self,
        key: u64,
        rows: &[RolloutRow],
    ) -> Result<Option<String>, SampleError> {
        let mut decisions: Vec<(&'static str, GuardRecord, Option<String>)> = Vec::new();
        let verifier = self.io.ctx.verifier.as_ref().map_or("-", |v| v.name());
        let max_tokens = self.io.config.sampler.max_tokens.get();
        let s = &self.io.config.sampling;
        let a = self
            .active
            .get_mut(&key)
            .expect("request of an active prompt");
        let has_gold = a.prompt.answer.is_some();
        let deferred = self.io.stage.is_some();
        for r in rows {
            let valid = self
                .io
                .policy
                .is_valid(r.response.is_some(), false, r.truncated);
            let passed = valid && r.score.is_some_and(|s| s >= PASS_SCORE);
            if deferred {
                a.waiting.push((r.rollout_idx, valid));
            } else {
                a.state.record(valid, r.score);
            }
            let c = &mut *self.io.counters;
            c.rollouts += 1;
            c.valid += u64::from(valid);
            c.passed += u64::from(passed);
            c.truncated += u64::from(r.truncated);
            c.completion_tokens += u64::from(r.completion_tokens.unwrap_or(0));
            if let Some(g) = self.truncation.as_mut()
                && let Some(d) = g.observe(r.truncated, r.completion_tokens)
            {
                let record = d.record(s.max_truncation_rate);
                decisions.push((
                    "truncation",
                    record,
                    d.fired.then(|| d.report.message(max_tokens)),
                ));
            }
            let Some(response) = r.response.as_deref().filter(|_| valid) else {
                continue;
            };
            if !a.checked {
                a.hashes.push(crate::store::rollout::response_hash(
                    response,
                    r.reasoning.as_deref(),
                ));
            }
            if has_gold && let Some(g) = self.answers.as_mut() {
                let final_part = crate::verifier::split::split(response)
                    .final_part()
                    .unwrap_or_default();
                if let Some(d) = g.observe(r.pred.as_deref(), passed, final_part) {
                    if !d.fired
                        && let Some(w) = d.report.no_pass_warning(verifier)
                    {
                        tracing::warn!("{w}");
                    }
                    let record = d.record(s.max_no_answer_rate);
                    decisions.push((
                        "no_answer",
                        record,
                        d.fired.then(|| d.report.message(verifier)),
                    ));
                }
            }
        }
        let mut stop = None;
        for (name, record, message) in decisions {
            // A decided guard has nothing more to look at (the extraction
            // guard would otherwise split every later response).
            match name {
                "truncation" => self.truncation = None,
                _ => self.answers = None,
            }
            self.send(WriterMsg::Guard(name, record))?;
            stop = stop.or(message);
        }
        Ok(stop)
    }

    /// Stops the run for a guard: nothing more is sent; what arrived is
    /// saved by the writer.
    fn guard_stop(&mut self, message: String) -> SampleError {
        self.flow.abort();
        if let Some(stage) = self.io.stage.as_mut() {
            stage.abort();
        }
        self.progress.finish();
        SampleError::Guard(message)
    }

    /// The sampling guard's look at a prompt whose step just finished, once
    /// it has two or more valid responses.
    fn check_identical(&mut self, key: u64) -> Result<Option<String>, SampleError> {
        let a = self
            .active
            .get_mut(&key)
            .expect("request of an active prompt");
        if a.checked || a.hashes.len() < 2 {
            return Ok(None);
        }
        a.checked = true;
        let hashes = std::mem::take(&mut a.hashes);
        let Some(d) = self.identical.as_mut().and_then(|g| g.observe(&hashes)) else {
            return Ok(None);
        };
        let record = d.record(self.io.config.sampling.max_identical_rate);
        self.send(WriterMsg::Guard("identical", record))?;
        if !d.fired {
            // The window passed: the other prompts need no hashes any more.
            self.identical = None;
            for a in self.active.values_mut() {
                a.checked = true;
                a.hashes = Vec::new();
            }
            return Ok(None);
        }
        Ok(Some(d.report.message(self.io.config.sampler.temperature)))
    }

    /// Once a prompt has nothing in flight: its next step, or its end (done,
    /// or left unfinished for the next resume after too many failures).
    fn advance(&mut self, key: u64) -> Result<(), SampleError> {
        if self.stopping() {
            return Ok(());
        }
        let a = &self.active[&key];
        if a.outstanding > 0 || !a.waiting.is_empty() {
            return Ok(());
        }
        if let Some(message) = self.check_identical(key)? {
            return Err(self.guard_stop(message));
        }
        let a = self
            .active
            .get_mut(&key)
            .expect("request of an active prompt");
        let next = if a.given_up {
            None
        } else {
            a.state.start_step(self.io.policy)
        };
        match next {
            Some(p) => enqueue(&mut self.queue, a, key, p, self.io.config.sampler.sends_n()),
            None if a.given_up => {
                tracing::debug!(
                    "prompt {} failed {} times in this run: left unfinished for the next resume",
                    a.prompt.id,
                    self.io.policy.max_failed_attempts
                );
                self.active.remove(&key);
                self.io.counters.prompts_unfinished += 1;
            }
            None => {
                let shard = a.prompt.shard;
                self.active.remove(&key);
                self.io.counters.prompts_done += 1;
                self.send(WriterMsg::PromptDone(shard))?;
            }
        }
        Ok(())
    }
}
