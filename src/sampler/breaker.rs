//! The circuit breaker and the failure log of a sampling run.
//!
//! [`Breaker`] watches the outcome of the most recent requests (after their
//! retries) and trips when more than a set share of them failed, or at once
//! on a failure no retry can fix (a refused key, an unknown model), so that
//! a dead server stops the run instead of failing every remaining prompt.
//! [`FailureLog`] groups failures by cause for the run's summary.

use std::collections::{HashMap, VecDeque};

use super::client::RequestFailure;

/// Trips on persistent failure.
#[derive(Debug, Clone)]
pub struct Breaker {
    window: VecDeque<bool>,
    size: usize,
    max_rate: f64,
    failed: usize,
}

impl Breaker {
    /// A breaker over the last `size` requests that trips above `max_rate`
    /// failed.
    pub fn new(size: usize, max_rate: f64) -> Self {
        Self {
            window: VecDeque::with_capacity(size),
            size: size.max(1),
            max_rate,
            failed: 0,
        }
    }

    /// Records one request's outcome; returns whether the breaker trips.
    /// It trips only on a full window, so the first failures of a run
    /// (or a short run) never trip it by themselves.
    pub fn observe(&mut self, failed: bool) -> bool {
        if self.window.len() == self.size && self.window.pop_front() == Some(true) {
            self.failed -= 1;
        }
        self.window.push_back(failed);
        self.failed += usize::from(failed);
        self.window.len() == self.size && self.failed as f64 > self.max_rate * self.size as f64
    }

    /// Failed requests in the window.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// Requests in the window.
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// Whether no request was observed yet.
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }
}

/// Failed requests of one cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    /// The cause (the last attempt's reason).
    pub cause: String,
    /// The endpoint that answered it last.
    pub endpoint: String,
    /// Failed requests with this cause.
    pub requests: u64,
    /// Rollouts those requests asked for.
    pub rollouts: u64,
}

/// Failed requests grouped by cause.
#[derive(Debug, Clone, Default)]
pub struct FailureLog {
    groups: HashMap<String, FailureGroup>,
}

impl FailureLog {
    /// Records a failed request that asked for `rollouts` rollouts.
    pub fn record(&mut self, f: &RequestFailure, rollouts: usize) {
        let g = self
            .groups
            .entry(f.cause.clone())
            .or_insert_with(|| FailureGroup {
                cause: f.cause.clone(),
                endpoint: f.endpoint.clone(),
                requests: 0,
                rollouts: 0,
            });
        g.requests += 1;
        g.rollouts += rollouts as u64;
        g.endpoint.clone_from(&f.endpoint);
    }

    /// The groups, most frequent first.
    pub fn groups(&self) -> Vec<FailureGroup> {
        let mut out: Vec<FailureGroup> = self.groups.values().cloned().collect();
        out.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.cause.cmp(&b.cause)));
        out
    }

    /// Failed requests in all.
    pub fn requests(&self) -> u64 {
        self.groups.values().map(|g| g.requests).sum()
    }
}

impl FailureGroup {
    /// `12 request(s) (48 rollouts): cannot connect: … [http://…/v1]`.
    pub fn line(&self) -> String {
        format!(
            "{} request(s) ({} rollout(s)): {} [{}]",
            self.requests, self.rollouts, self.cause, self.endpoint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_on_a_full_window_above_the_rate() {
        let mut b = Breaker::new(4, 0.5);
        assert!(!b.observe(true));
        assert!(!b.observe(true));
        assert!(!b.observe(true), "three of three, window not full");
        assert!(b.observe(true));
        let mut b = Breaker::new(4, 0.5);
        for failed in [true, false, true, false, true, false, true, false] {
            assert!(!b.observe(failed), "half is not more than half");
        }
        assert_eq!((b.failed(), b.len()), (2, 4));
        assert!(!b.observe(true));
        assert!(b.observe(true), "old outcomes leave the window");
    }

    #[test]
    fn failures_group_by_cause_most_frequent_first() {
        let f = |cause: &str, endpoint: &str| RequestFailure {
            cause: cause.into(),
            message: format!("{cause} (gave up after 2 attempts)"),
            endpoint: endpoint.into(),
            systemic: None,
        };
        let mut log = FailureLog::default();
        log.record(&f("HTTP 500: boom", "http://a/v1"), 4);
        log.record(&f("cannot connect: refused", "http://a/v1"), 4);
        log.record(&f("cannot connect: refused", "http://b/v1"), 1);
        let groups = log.groups();
        assert_eq!(log.requests(), 3);
        assert_eq!(groups[0].cause, "cannot connect: refused");
        assert_eq!((groups[0].requests, groups[0].rollouts), (2, 5));
        assert_eq!(
            groups[0].line(),
            "2 request(s) (5 rollout(s)): cannot connect: refused [http://b/v1]"
        );
    }
}
