//! Verdicts that arrive after the response: what the scheduler asks of a
//! verifier that needs another server or time of its own (a judge, a
//! reward model, code run in a sandbox). The verifier is a stage beside the
//! sampling requests: the scheduler hands it each finished rollout, keeps
//! sampling other prompts while verdicts are pending (up to
//! `sampling.max_pending_verdicts`), and moves a prompt on to its next step
//! or its end once every rollout of the step has its verdict, by the same
//! policy as inline verdicts.
//!
//! A stage owns its requests (slots, breaker, pacing), where its answers
//! are kept (durable as they arrive, so a resume asks nothing twice) and
//! what its messages name; the scheduler owns the budget, which a stage
//! draws on with [`Budget::admit_cost`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::budget::{Budget, Cap};
use super::feed::Prompt;
use crate::store::StoreError;

/// One finished rollout handed to a stage.
#[derive(Debug, Clone, Copy)]
pub struct Rollout<'a> {
    /// `rollout_idx`.
    pub rollout_idx: u32,
    /// The response (`None`: the server sent no content).
    pub response: Option<&'a str>,
    /// Separate reasoning, when the server split it out.
    pub reasoning: Option<&'a str>,
}

impl<'a> From<&'a super::writer::RolloutRow> for Rollout<'a> {
    fn from(r: &'a super::writer::RolloutRow) -> Self {
        Self {
            rollout_idx: r.rollout_idx,
            response: r.response.as_deref(),
            reasoning: r.reasoning.as_deref(),
        }
    }
}

impl<'a> From<&'a super::feed::SavedResponse> for Rollout<'a> {
    fn from(r: &'a super::feed::SavedResponse) -> Self {
        Self {
            rollout_idx: r.rollout_idx,
            response: r.response.as_deref(),
            reasoning: r.reasoning.as_deref(),
        }
    }
}

/// A rollout's verdict, for the prompt the scheduler knows by `prompt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The scheduler's key of the prompt.
    pub prompt: u64,
    /// `rollout_idx`.
    pub rollout_idx: u32,
    /// The score; `None` when there is none (the judge's answer could not
    /// be read, or the request failed: asked again by the next run).
    pub score: Option<f64>,
}

/// What a stage reports from [`VerdictStage::next`].
#[derive(Debug)]
pub enum StageEvent {
    /// Verdicts arrived.
    Verdicts(Vec<Verdict>),
    /// The stage's server is failing (a refused key, an unknown model,
    /// nothing listening, or its breaker tripped): the run stops. The
    /// message names the server and the cause.
    Failing(String),
    /// Saving an answer failed: the run stops with this error.
    Error(StoreError),
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The grace period ran out with this many requests in flight.
    Abandoned(usize),
    /// Nothing happened for a tick.
    Tick,
}

/// A stage's totals for this run, for the progress line and `state.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageCounters {
    /// Rollouts whose verdict arrived.
    pub verdicts: u64,
    /// Of those, settled without a request (no response, unclosed
    /// thinking, a saved answer).
    pub settled: u64,
    /// Requests answered.
    pub requests: u64,
    /// Requests that failed after their retries.
    pub failed_requests: u64,
    /// Prompt tokens of the answered requests.
    pub prompt_tokens: u64,
    /// Completion tokens of the answered requests.
    pub completion_tokens: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Rollouts waiting for their verdict now.
    pub pending: u64,
}

/// A future a stage waits on, borrowed from it.
pub type StageFuture<'a> = Pin<Box<dyn Future<Output = StageEvent> + Send + 'a>>;

/// A verifier whose verdicts arrive after the response.
pub trait VerdictStage: Send {
    /// What messages and the progress line call it (`judge`).
    fn name(&self) -> &'static str;

    /// The score from which a verdict counts as a pass (for the counters).
    fn pass_score(&self) -> f64;

    /// Hands over finished rollouts of prompt `key`. Verdicts known at once
    /// (no response, a saved answer) are returned; the others come from
    /// [`VerdictStage::next`], one for every rollout handed over.
    fn submit(
        &mut self,
        key: u64,
        prompt: &Arc<Prompt>,
        rollouts: &[Rollout<'_>],
    ) -> Result<Vec<Verdict>, StoreError>;

    /// Sends queued work while its slots are free and `budget` allows.
    /// Returns the cap the next request could pass when nothing of its own
    /// is in flight to settle first (the scheduler stops the run once the
    /// sampling requests have settled too).
    fn send(&mut self, budget: Option<&mut Budget>) -> Option<Cap>;

    /// Waits for the next event.
    fn next(&mut self) -> StageFuture<'_>;

    /// Stops sending; requests in flight get `grace` to finish.
    fn stop_after(&mut self, grace: Duration);

    /// Abandons every request in flight at once.
    fn abort(&mut self);

    /// Whether nothing is in flight.
    fn is_idle(&self) -> bool;

    /// Rollouts handed over whose verdict has not arrived.
    fn pending(&self) -> usize;

    /// This run's totals so far.
    fn counters(&self) -> StageCounters;

    /// Makes what arrived durable in its final form and records what the
    /// stage spent (called once, after the loop and the rollout writer; a
    /// killed run's answers come back from their journal).
    fn finish(&mut self) -> Result<(), StoreError>;
}
