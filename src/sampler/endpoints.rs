//! The set of servers requests go to: least-loaded healthy endpoint first,
//! and an endpoint that keeps failing is taken out for a cool-down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failures after which an endpoint is taken out.
pub const FAILURES_BEFORE_COOLDOWN: u32 = 3;
/// How long a failing endpoint stays out before it is tried again.
pub const COOLDOWN: Duration = Duration::from_secs(30);
/// Connections refused in a row, on every endpoint, after which the servers
/// count as gone ([`EndpointPool::all_unreachable`]).
pub const REFUSALS_BEFORE_GONE: u32 = 3;

#[derive(Debug)]
struct Endpoint {
    url: String,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    /// Attempts in a row that could not connect at all.
    refused: AtomicU32,
    down_until: Mutex<Option<Instant>>,
}

/// Several OpenAI-compatible base URLs, load-balanced.
#[derive(Debug)]
pub struct EndpointPool {
    endpoints: Vec<Endpoint>,
}

/// An endpoint picked for one attempt; releases its load count when dropped.
#[derive(Debug)]
pub struct Lease<'a> {
    pool: &'a EndpointPool,
    index: usize,
}

impl EndpointPool {
    /// A pool over `urls` (trailing `/` removed).
    pub fn new(urls: &[String]) -> Self {
        Self {
            endpoints: urls
                .iter()
                .map(|u| Endpoint {
                    url: u.trim_end_matches('/').to_string(),
                    in_flight: AtomicUsize::new(0),
                    failures: AtomicU32::new(0),
                    refused: AtomicU32::new(0),
                    down_until: Mutex::new(None),
                })
                .collect(),
        }
    }

    /// The least-loaded endpoint among those not cooling down (among all
    /// when every one is).
    pub fn acquire(&self) -> Lease<'_> {
        let now = Instant::now();
        let up = |e: &Endpoint| {
            let down = e.down_until.lock().unwrap_or_else(|p| p.into_inner());
            down.is_none_or(|t| t <= now)
        };
        let load = |i: &usize| self.endpoints[*i].in_flight.load(Ordering::Relaxed);
        let healthy: Vec<usize> = (0..self.endpoints.len())
            .filter(|&i| up(&self.endpoints[i]))
            .collect();
        let index = if healthy.is_empty() {
            (0..self.endpoints.len()).min_by_key(load)
        } else {
            healthy.into_iter().min_by_key(load)
        }
        .expect("a pool has at least one endpoint");
        self.endpoints[index]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        Lease { pool: self, index }
    }

    /// Whether every endpoint refused its last [`REFUSALS_BEFORE_GONE`]
    /// connections: no server is listening any more.
    pub fn all_unreachable(&self) -> bool {
        self.endpoints
            .iter()
            .all(|e| e.refused.load(Ordering::Relaxed) >= REFUSALS_BEFORE_GONE)
    }

    /// The base URLs, in order.
    pub fn urls(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.url.clone()).collect()
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether the pool is empty (never, once built from a config).
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

impl Lease<'_> {
    /// The endpoint's base URL.
    pub fn url(&self) -> &str {
        &self.pool.endpoints[self.index].url
    }

    /// The attempt succeeded: the endpoint is healthy.
    pub fn success(&self) {
        let e = &self.pool.endpoints[self.index];
        e.failures.store(0, Ordering::Relaxed);
        e.refused.store(0, Ordering::Relaxed);
        *e.down_until.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Whether the attempt reached a server: a connection that could not be
    /// made counts toward [`EndpointPool::all_unreachable`], any answer
    /// resets it.
    pub fn connected(&self, connected: bool) {
        let refused = &self.pool.endpoints[self.index].refused;
        if connected {
            refused.store(0, Ordering::Relaxed);
        } else {
            refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The attempt failed for a reason of the endpoint's own (connection,
    /// timeout, 5xx); after [`FAILURES_BEFORE_COOLDOWN`] in a row it is taken
    /// out for [`COOLDOWN`]. A lone endpoint is never taken out.
    pub fn failure(&self) {
        let e = &self.pool.endpoints[self.index];
        let failures = e.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= FAILURES_BEFORE_COOLDOWN && self.pool.endpoints.len() > 1 {
            e.failures.store(0, Ordering::Relaxed);
            let mut down = e.down_until.lock().unwrap_or_else(|p| p.into_inner());
            if down.is_none_or(|t| t <= Instant::now()) {
                *down = Some(Instant::now() + COOLDOWN);
                tracing::warn!(
                    "endpoint {} failed {failures} times in a row: taken out for {} s",
                    e.url,
                    COOLDOWN.as_secs()
                );
            }
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.endpoints[self.index]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> EndpointPool {
        EndpointPool::new(&["http://a/v1/".into(), "http://b/v1".into()])
    }

    #[test]
    fn least_loaded_first() {
        let p = pool();
        let a = p.acquire();
        let b = p.acquire();
        assert_eq!(a.url(), "http://a/v1");
        assert_eq!(b.url(), "http://b/v1");
        drop(b);
        assert_eq!(p.acquire().url(), "http://b/v1");
    }

    #[test]
    fn failing_endpoint_is_taken_out() {
        let p = pool();
        for _ in 0..FAILURES_BEFORE_COOLDOWN {
            p.acquire().failure();
            // `a` is picked each time: both idle, `a` first.
        }
        let leases: Vec<_> = (0..3).map(|_| p.acquire()).collect();
        assert!(leases.iter().all(|l| l.url() == "http://b/v1"));
    }

    #[test]
    fn servers_are_gone_when_every_endpoint_refuses_in_a_row() {
        let p = pool();
        // Two attempts at a time: one to each endpoint.
        let refuse_both = || {
            let (a, b) = (p.acquire(), p.acquire());
            assert_ne!(a.url(), b.url());
            a.connected(false);
            b.connected(false);
        };
        for _ in 0..REFUSALS_BEFORE_GONE - 1 {
            refuse_both();
        }
        p.acquire().connected(false);
        assert!(!p.all_unreachable(), "one endpoint still has a chance");
        refuse_both();
        assert!(p.all_unreachable());
        p.acquire().connected(true);
        assert!(!p.all_unreachable(), "an answer resets it");
    }

    #[test]
    fn a_lone_endpoint_stays_in() {
        let p = EndpointPool::new(&["http://a/v1".into()]);
        for _ in 0..10 {
            p.acquire().failure();
        }
        assert_eq!(p.acquire().url(), "http://a/v1");
    }
}
