//! The judge as a stage of sampling ([`VerdictStage`]): every finished
//! rollout is planned as `rsr verify` plans it ([`super::plan`]), settled at
//! once (no response, unclosed thinking, the multiple-choice rules, a saved
//! answer) or queued for the judge server, and its verdict handed back to
//! the scheduler, which moves the prompt on when its step has all of them.
//!
//! The judge has its own slots (`judge.concurrent_requests`), breaker and
//! pacing (`judge.max_rpm`/`max_tpm`, in its client); identical requests
//! are sent once; reward-model items of one shard share a request
//! (`batch_size`). Answers go to the judge cache as they arrive
//! (`judge/shard_NNNN/`, journaled before they count), the same files
//! `rsr verify` reads: the scores file the judge step writes after sampling
//! then asks nothing again, and a resumed run asks only what was in flight
//! at a kill. At most [`MAX_OPEN_SHARDS`] shards' saved answers are held at
//! once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::run::{Done, failure_stop, record_spend, records, request};
use super::{JudgeContext, Plan, Row, Spec};
use crate::config::Config;
use crate::sampler::breaker::Breaker;
use crate::sampler::budget::{Budget, Cap, Spent};
use crate::sampler::feed::Prompt;
use crate::sampler::flow::{Event, Flow};
use crate::sampler::verdicts::{
    Rollout, StageCounters, StageEvent, StageFuture, Verdict, VerdictStage,
};
use crate::store::StoreError;
use crate::store::judged::{self as cache, OpenShards};

/// Shards whose saved answers are held at once.
pub const MAX_OPEN_SHARDS: usize = 4;

/// A rollout waiting for the answer to its request item.
struct Waiter {
    prompt: Arc<Prompt>,
    key: u64,
    rollout_idx: u32,
}

/// The judge of a sampling run.
pub struct LiveJudge {
    root: std::path::PathBuf,
    state: crate::store::StateFile,
    config: Config,
    spec: Arc<Spec>,
    ctx: JudgeContext,
    flow: Flow<Done>,
    /// Judge prices (USD per million prompt and completion tokens), for
    /// `budget.max_cost`.
    prices: Option<(f64, f64)>,
    /// Completion tokens an answer may use (none for a reward).
    max_tokens: u64,
    shards: OpenShards,
    /// Items not yet sent: their shard, key and body.
    queue: VecDeque<(u32, String, String)>,
    /// Rollouts waiting, by the key of their item (queued or in flight).
    waiters: HashMap<String, Vec<Waiter>>,
    pending: usize,
    /// Reservations to settle in the budget: (worst, spent) USD.
    to_settle: Vec<(f64, f64)>,
    counters: StageCounters,
}

impl LiveJudge {
    /// The judge stage of a sampling run of `config` in work dir `root`,
    /// asking the judge server of `ctx`. Answers a killed run left in a
    /// journal are recovered first.
    pub fn new(
        wd: &crate::store::WorkDir,
        config: &Config,
        spec: &Spec,
        ctx: JudgeContext,
    ) -> Result<Self, StoreError> {
        let root = wd.root();
        cache::recover(root, &|s| wd.owns(s))?;
        let p = &config.pricing;
        let max_tokens = match spec {
            Spec::Reward { .. } => 0,
            _ => u64::from(config.judge.max_tokens.get()),
        };
        Ok(Self {
            root: root.to_path_buf(),
            state: wd.state_file(),
            config: config.clone(),
            spec: Arc::new(spec.clone()),
            ctx,
            flow: Flow::new(
                config.judge.concurrent_requests.get(),
                Breaker::new(
                    config.sampling.failure_window.get(),
                    config.sampling.max_failure_rate,
                ),
                Duration::from_millis(500),
            ),
            prices: p.judge_input.zip(p.judge_output),
            max_tokens,
            shards: OpenShards::new(root, MAX_OPEN_SHARDS),
            queue: VecDeque::new(),
            waiters: HashMap::new(),
            pending: 0,
            to_settle: Vec::new(),
            counters: StageCounters::default(),
        })
    }

    /// The verdict of a waiter from a judge's raw answer.
    fn read(&self, raw: &str, w: &Waiter) -> Verdict {
        let row = Row {
            response: None,
            reasoning: None,
            messages: &w.prompt.messages,
            gold: w.prompt.answer.as_deref(),
            metadata: w.prompt.metadata.as_deref(),
        };
        Verdict {
            prompt: w.key,
            rollout_idx: w.rollout_idx,
            score: super::read_answer(&self.spec, raw, &row).score,
        }
    }

    /// The most a request of `items` items to a prompt of about
    /// `prompt_tokens` can cost, when the judge's prices are set.
    fn worst_cost(&self, prompt_tokens: u64, items: u64) -> Option<f64> {
        let (input, output) = self.prices?;
        Some(
            Spent {
                requests: 1,
                prompt_tokens,
                completion_tokens: self.max_tokens * items,
            }
            .cost(input, output),
        )
    }

    /// Counts an answered or failed request and turns it into verdicts.
    fn on_answer(&mut self, (shard, keys, prompt_tokens, result): Done) -> StageEvent {
        let items = keys.len() as u64;
        let worst = self.worst_cost(prompt_tokens, items);
        if let Some(o) = self.shards.get_mut(shard) {
            o.pending = o.pending.saturating_sub(keys.len());
        }
        let reply = match result {
            Ok(reply) => reply,
            Err(failure) => {
                if let Some(w) = worst {
                    self.to_settle.push((w, 0.0));
                }
                self.counters.failed_requests += 1;
                let tripped = self.flow.observe(true);
                let verdicts = self.release(&keys, |_, _, w| Verdict {
                    prompt: w.key,
                    rollout_idx: w.rollout_idx,
                    score: None,
                });
                tracing::debug!("a judge request failed: {}", failure.message);
                if let Some(why) = failure_stop(self.flow.breaker(), &failure, tripped) {
                    return StageEvent::Failing(format!(
                        "the judge ({}) is failing: {why}",
                        self.ctx.model
                    ));
                }
                return StageEvent::Verdicts(verdicts);
            }
        };
        self.flow.observe(false);
        self.counters.requests += 1;
        let (records, spent) = records(keys.clone(), reply, &self.ctx.model);
        self.counters.prompt_tokens += spent.prompt_tokens;
        self.counters.completion_tokens += spent.completion_tokens;
        if let (Some(w), Some((input, output))) = (worst, self.prices) {
            self.to_settle.push((w, spent.cost(input, output)));
        }
        // Durable before it counts.
        let raws: HashMap<String, String> = records
            .iter()
            .map(|r| (r.key.clone(), r.raw.clone()))
            .collect();
        if let Some(o) = self.shards.get_mut(shard) {
            for r in records {
                if let Err(e) = o.writer.append(r.clone()) {
                    return StageEvent::Error(e);
                }
                // A later rollout with the same request is answered from it.
                o.saved.insert(r.key.clone(), r);
            }
        }
        let verdicts = self.release(&keys, |this, key, w| match raws.get(key) {
            Some(raw) => this.read(raw, w),
            None => Verdict {
                prompt: w.key,
                rollout_idx: w.rollout_idx,
                score: None,
            },
        });
        StageEvent::Verdicts(verdicts)
    }

    /// The verdicts of every rollout waiting for `keys`, by `verdict`.
    fn release(
        &mut self,
        keys: &[String],
        verdict: impl Fn(&Self, &str, &Waiter) -> Verdict,
    ) -> Vec<Verdict> {
        let mut out = Vec::new();
        for key in keys {
            let waiting = self.waiters.remove(key).unwrap_or_default();
            for w in &waiting {
                out.push(verdict(self, key, w));
            }
        }
        self.pending = self.pending.saturating_sub(out.len());
        self.counters.verdicts += out.len() as u64;
        out
    }
}

impl VerdictStage for LiveJudge {
    fn name(&self) -> &'static str {
        "judge"
    }

    fn pass_score(&self) -> f64 {
        self.spec.pass_score()
    }

    fn submit(
        &mut self,
        key: u64,
        prompt: &Arc<Prompt>,
        rollouts: &[Rollout<'_>],
    ) -> Result<Vec<Verdict>, StoreError> {
        let mut ready = Vec::new();
        for r in rollouts {
            let row = Row {
                response: r.response,
                reasoning: r.reasoning,
                messages: &prompt.messages,
                gold: prompt.answer.as_deref(),
                metadata: prompt.metadata.as_deref(),
            };
            let body = |messages: &str| self.ctx.backend.chat_body(messages, 1);
            let plan = super::plan(&self.spec, &row, &body, &self.ctx.model);
            let (item_key, item) = match plan {
                Plan::Settled(j) => {
                    ready.push(Verdict {
                        prompt: key,
                        rollout_idx: r.rollout_idx,
                        score: j.score,
                    });
                    continue;
                }
                Plan::Ask { key, item } => (key, item),
            };
            let saved = match self.ctx.refresh {
                true => None,
                false => self
                    .shards
                    .open(prompt.shard)?
                    .saved
                    .get(&item_key)
                    .map(|r| r.raw.clone()),
            };
            if let Some(raw) = saved {
                ready.push(Verdict {
                    prompt: key,
                    rollout_idx: r.rollout_idx,
                    score: super::read_answer(&self.spec, &raw, &row).score,
                });
                continue;
            }
            let waiter = Waiter {
                prompt: Arc::clone(prompt),
                key,
                rollout_idx: r.rollout_idx,
            };
            self.pending += 1;
            match self.waiters.get_mut(&item_key) {
                // The same request is queued or in flight: its answer serves both.
                Some(w) => w.push(waiter),
                None => {
                    self.shards.open(prompt.shard)?.pending += 1;
                    self.waiters.insert(item_key.clone(), vec![waiter]);
                    self.queue.push_back((prompt.shard, item_key, item));
                }
            }
        }
        self.counters.settled += ready.len() as u64;
        self.counters.verdicts += ready.len() as u64;
        Ok(ready)
    }

    fn send(&mut self, mut budget: Option<&mut Budget>) -> Option<Cap> {
        if let Some(b) = budget.as_deref_mut() {
            for (worst, spent) in self.to_settle.drain(..) {
                b.settle_cost(worst, spent);
            }
        }
        let size = self.spec.batch_size();
        while self.flow.has_slot() {
            let Some(&(shard, _, _)) = self.queue.front() else {
                break;
            };
            // Items of one shard share a request (reward models batch).
            let n = self
                .queue
                .iter()
                .take(size)
                .take_while(|(s, _, _)| *s == shard)
                .count();
            let prompt_tokens: u64 = self
                .queue
                .iter()
                .take(n)
                .map(|(_, _, item)| item.len() as u64 / 4)
                .sum();
            if let (Some(b), Some(worst)) = (
                budget.as_deref_mut(),
                self.worst_cost(prompt_tokens, n as u64),
            ) && let Err(cap) = b.admit_cost(worst)
            {
                // Wait for the requests in flight to settle; with none, the
                // next can never fit.
                return self.flow.is_idle().then_some(cap);
            }
            let batch: Vec<(String, String)> = self
                .queue
                .drain(..n)
                .map(|(_, key, item)| (key, item))
                .collect();
            let task = request(&self.ctx, &self.spec, shard, prompt_tokens, batch);
            self.flow.spawn(task);
        }
        None
    }

    fn next(&mut self) -> StageFuture<'_> {
        Box::pin(async move {
            match self.flow.next_request().await {
                Event::Done(done) => self.on_answer(done),
                Event::Interrupted => {
                    self.flow.stop_after(crate::sampler::INTERRUPT_GRACE);
                    StageEvent::Interrupted
                }
                Event::Abandoned(left) => StageEvent::Abandoned(left),
                Event::Other(()) | Event::Tick => StageEvent::Tick,
            }
        })
    }

    fn stop_after(&mut self, grace: Duration) {
        self.flow.stop_after(grace);
    }

    fn abort(&mut self) {
        self.flow.abort();
    }

    fn is_idle(&self) -> bool {
        self.flow.is_idle()
    }

    fn pending(&self) -> usize {
        self.pending
    }

    fn counters(&self) -> StageCounters {
        StageCounters {
            in_flight: self.flow.in_flight() as u64,
            pending: self.pending as u64,
            ..self.counters
        }
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        self.shards.commit_all()?;
        let c = &self.counters;
        self.state.add_judge(
            c.requests,
            c.failed_requests,
            c.prompt_tokens,
            c.completion_tokens,
        )?;
        if c.requests + c.failed_requests > 0 {
            record_spend(
                &self.root,
                &self.config,
                &self.spec,
                &self.ctx.model,
                self.config.verifier.label(),
                (c.prompt_tokens, c.completion_tokens),
            )?;
        }
        Ok(())
    }
}
