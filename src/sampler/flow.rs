//! The request flow every loop of rsr runs on: the sampler's scheduler and
//! the judge. It owns the pool of request slots, admission against the
//! budgets, the circuit breaker, Ctrl-C and SIGTERM, and the grace period
//! after a stop; the loops own their work (prompts and steps, shards and
//! judge items) and ask the flow when a request may go and what happened
//! next. Pacing lives in the client ([`super::client::HttpBackend`]),
//! which both loops share.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, Interval};

use super::Signals;
use super::breaker::Breaker;
use super::budget::{Budget, Cap};

/// What [`Flow::admit`] decided for the next request.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Send it: its worst case is reserved in the budget.
    Send,
    /// Not now: no free slot, the flow is stopping, or the budget can take
    /// it only once the requests in flight settle.
    Hold,
    /// Never: with nothing in flight it still passes a budget.
    Stop(Cap),
}

/// What happened next, from [`Flow::next`].
#[derive(Debug)]
pub enum Event<T, E> {
    /// A request finished with its outcome (a task aborted at a stop ends
    /// without one and is not reported).
    Done(T),
    /// The other work the loop waits on finished (a shard read, say).
    Other(E),
    /// Ctrl-C or SIGTERM: the loop should stop taking work
    /// ([`Flow::stop_after`]).
    Interrupted,
    /// The grace period ran out: this many requests still in flight were
    /// abandoned.
    Abandoned(usize),
    /// Nothing happened for a tick (time for progress).
    Tick,
}

/// The request flow of one loop; `T` is a request's outcome.
pub struct Flow<T> {
    in_flight: JoinSet<T>,
    slots: usize,
    breaker: Breaker,
    signals: Signals,
    deadline: Option<Instant>,
    tick: Interval,
}

impl<T: Send + 'static> Flow<T> {
    /// A flow of `slots` concurrent requests, judged by `breaker`, waking
    /// its loop every `tick` at least.
    pub fn new(slots: usize, breaker: Breaker, tick: Duration) -> Self {
        let mut tick = tokio::time::interval(tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            in_flight: JoinSet::new(),
            slots,
            breaker,
            signals: Signals::new(),
            deadline: None,
            tick,
        }
    }

    /// Whether another request may go now: a slot is free and the flow is
    /// not stopping.
    pub fn has_slot(&self) -> bool {
        !self.stopping() && self.in_flight.len() < self.slots
    }

    /// Decides the next request: a worst case of `n` answers to a prompt
    /// of about `prompt_tokens`, reserved in `budget` when it goes. A
    /// request that does not fit waits while others are in flight (each
    /// settles at its real cost and frees the unused part of its
    /// reservation); with nothing in flight it never will.
    pub fn admit(&self, budget: Option<&mut Budget>, prompt_tokens: u64, n: u64) -> Admission {
        if !self.has_slot() {
            return Admission::Hold;
        }
        match budget.map(|b| b.admit(prompt_tokens, n)) {
            Some(Err(cap)) if self.in_flight.is_empty() => Admission::Stop(cap),
            Some(Err(cap)) => {
                tracing::debug!(
                    "holding requests: the next could pass {} until the {} in flight settle",
                    cap.detail,
                    self.in_flight.len()
                );
                Admission::Hold
            }
            _ => Admission::Send,
        }
    }

    /// Sends a request (admitted by [`Flow::admit`]).
    pub fn spawn(&mut self, request: impl Future<Output = T> + Send + 'static) {
        self.in_flight.spawn(request);
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Whether the flow is stopping: no new request goes.
    pub fn stopping(&self) -> bool {
        self.deadline.is_some()
    }

    /// Stops sending; the requests in flight get `grace` to finish (an
    /// earlier stop's grace is kept).
    pub fn stop_after(&mut self, grace: Duration) {
        self.deadline.get_or_insert_with(|| Instant::now() + grace);
    }

    /// Abandons every request in flight at once (a guard stopped the run).
    pub fn abort(&mut self) {
        self.in_flight.abort_all();
        self.in_flight.detach_all();
    }

    /// Counts a request's result in the breaker; `true` when the failures
    /// in its window trip it.
    pub fn observe(&mut self, failed: bool) -> bool {
        self.breaker.observe(failed)
    }

    /// The breaker, for its figures in a message.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Waits for the next event with no other work to wait on.
    pub async fn next_request(&mut self) -> Event<T, ()> {
        self.next::<std::future::Pending<()>>(None).await
    }

    /// Waits for the next event: a request's outcome, `other` (when given)
    /// finishing, a signal, the grace period's end, or a tick.
    pub async fn next<F>(&mut self, other: Option<Pin<&mut F>>) -> Event<T, F::Output>
    where
        F: Future + ?Sized,
    {
        let has_other = other.is_some();
        let other = async {
            match other {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        let stopping = self.stopping();
        let deadline = self.deadline;
        tokio::select! {
            Some(joined) = self.in_flight.join_next() => match joined {
                Ok(outcome) => Event::Done(outcome),
                Err(_) => Event::Tick,
            },
            done = other, if has_other => Event::Other(done),
            _ = self.signals.recv(), if !stopping => Event::Interrupted,
            _ = super::sleep_until(deadline), if deadline.is_some() => {
                let left = self.in_flight.len();
                self.abort();
                Event::Abandoned(left)
            }
            _ = self.tick.tick() => Event::Tick,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BudgetConfig, PricingConfig};

    fn budget(max_requests: u64) -> Budget {
        let limits = BudgetConfig {
            max_requests: Some(max_requests),
            ..BudgetConfig::default()
        };
        Budget::new(
            &limits,
            &PricingConfig::default(),
            16,
            Default::default(),
            0.0,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_request_over_the_budget_waits_for_those_in_flight_then_stops_the_flow() {
        let mut flow: Flow<u32> = Flow::new(4, Breaker::new(10, 0.5), Duration::from_secs(60));
        let mut b = budget(2);
        assert_eq!(flow.admit(Some(&mut b), 10, 1), Admission::Send);
        flow.spawn(async { 1 });
        assert_eq!(flow.admit(Some(&mut b), 10, 1), Admission::Send);
        flow.spawn(async { 2 });
        // A third could pass max_requests while two are in flight: held.
        assert_eq!(flow.admit(Some(&mut b), 10, 1), Admission::Hold);
        let mut done = Vec::new();
        while done.len() < 2 {
            if let Event::Done(n) = flow.next_request().await {
                let spent = crate::sampler::budget::Spent {
                    requests: 1,
                    ..Default::default()
                };
                b.settle(10, 1, Some(spent));
                done.push(n);
            }
        }
        done.sort();
        assert_eq!(done, [1, 2]);
        // The two settled requests used the budget up: nothing left.
        let Admission::Stop(cap) = flow.admit(Some(&mut b), 10, 1) else {
            panic!("stops with nothing in flight");
        };
        assert_eq!(cap.key, "budget.max_requests");
    }

    #[tokio::test]
    async fn slots_bound_the_requests_and_a_stop_ends_admission_and_abandons_at_its_deadline() {
        let mut flow: Flow<u32> = Flow::new(1, Breaker::new(10, 0.5), Duration::from_secs(60));
        assert_eq!(flow.admit(None, 0, 1), Admission::Send);
        flow.spawn(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        });
        assert_eq!(flow.admit(None, 0, 1), Admission::Hold, "one slot");
        flow.stop_after(Duration::from_millis(20));
        assert!(flow.stopping());
        loop {
            match flow.next_request().await {
                Event::Tick => continue,
                Event::Abandoned(n) => assert_eq!(n, 1),
                other => panic!("expected the deadline, got {other:?}"),
            }
            break;
        }
        assert!(flow.is_idle());
        assert_eq!(flow.admit(None, 0, 1), Admission::Hold, "stopping");
    }

    #[tokio::test]
    async fn other_work_is_reported_beside_the_requests() {
        let mut flow: Flow<u32> = Flow::new(2, Breaker::new(10, 0.5), Duration::from_secs(60));
        let mut read = std::pin::pin!(async { "shard read" });
        // The interval's first tick is immediate.
        assert!(matches!(flow.next_request().await, Event::Tick));
        match flow.next(Some(read.as_mut())).await {
            Event::Other(s) => assert_eq!(s, "shard read"),
            other => panic!("expected the other work, got {other:?}"),
        }
    }
}
