//! The set of servers requests go to: least-loaded healthy endpoint first
//! (or the prompt's own server, for prefix caches), an endpoint that keeps
//! failing taken out for a cool-down, and the list read again from
//! `sampler.endpoints_file` when it changes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Routing;

/// Consecutive failures after which an endpoint is taken out.
pub const FAILURES_BEFORE_COOLDOWN: u32 = 3;
/// How long a failing endpoint stays out before it is tried again.
pub const COOLDOWN: Duration = Duration::from_secs(30);
/// Connections refused in a row, on every endpoint, after which the servers
/// count as gone ([`EndpointPool::all_unreachable`]).
pub const REFUSALS_BEFORE_GONE: u32 = 3;
/// Requests above 1.5 times the average load a prompt's own server may
/// carry before prefix affinity sends the prompt elsewhere.
pub const AFFINITY_SLACK: f64 = 4.0;
/// How often the endpoints file is looked at (its time and size).
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Endpoint {
    url: String,
    /// The URL's hash, for prefix affinity's ranking.
    url_hash: u64,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    /// Attempts in a row that could not connect at all.
    refused: AtomicU32,
    down_until: Mutex<Option<Instant>>,
}

impl Endpoint {
    fn new(url: &str) -> Arc<Self> {
        let url = url.trim_end_matches('/');
        Arc::new(Self {
            url: url.to_string(),
            url_hash: crate::data::validate::fnv1a64(url.as_bytes()),
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            refused: AtomicU32::new(0),
            down_until: Mutex::new(None),
        })
    }

    fn up(&self, now: Instant) -> bool {
        let down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        down.is_none_or(|t| t <= now)
    }

    fn load(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// The file the list is read from, and what it looked like last time.
#[derive(Debug)]
struct Watch {
    path: PathBuf,
    seen: Mutex<Seen>,
}

#[derive(Debug)]
struct Seen {
    checked: Instant,
    stamp: Option<(SystemTime, u64)>,
}

/// Several OpenAI-compatible base URLs, load-balanced.
#[derive(Debug)]
pub struct EndpointPool {
    /// The current list; a request in flight keeps its endpoint alive
    /// after the file dropped it.
    endpoints: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    routing: Routing,
    watch: Option<Watch>,
}

/// An endpoint picked for one attempt; releases its load count when dropped.
#[derive(Debug)]
pub struct Lease<'a> {
    pool: &'a EndpointPool,
    endpoint: Arc<Endpoint>,
}

impl EndpointPool {
    /// A pool over `urls` (trailing `/` removed), least-loaded first.
    pub fn new(urls: &[String]) -> Self {
        Self {
            endpoints: RwLock::new(Arc::new(urls.iter().map(|u| Endpoint::new(u)).collect())),
            routing: Routing::LeastLoaded,
            watch: None,
        }
    }

    /// Routes by `routing` ([`EndpointPool::acquire_for`]).
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Reads the list again from `path` when the file changes (looked at
    /// every [`WATCH_EVERY`] at most): endpoints it adds are used, those it
    /// drops get no new request, those it keeps keep their health. A file
    /// that becomes unreadable or empty leaves the list as it was.
    pub fn watching(mut self, path: PathBuf) -> Self {
        let stamp = stamp_of(&path);
        self.watch = Some(Watch {
            path,
            seen: Mutex::new(Seen {
                checked: Instant::now(),
                stamp,
            }),
        });
        self
    }

    fn current(&self) -> Arc<Vec<Arc<Endpoint>>> {
        Arc::clone(&self.endpoints.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Looks at the endpoints file when it is time to.
    fn refresh(&self) {
        let Some(watch) = &self.watch else {
            return;
        };
        {
            let mut seen = watch.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.checked.elapsed() < WATCH_EVERY {
                return;
            }
            seen.checked = Instant::now();
            let stamp = stamp_of(&watch.path);
            if stamp == seen.stamp {
                return;
            }
            seen.stamp = stamp;
        }
        let urls = match crate::config::read_endpoints_file(&watch.path) {
            Ok(urls) => urls,
            Err(e) => {
                tracing::warn!("{e}: keeping the {} server(s) in use", self.len());
                return;
            }
        };
        let mut list = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
        let next: Vec<Arc<Endpoint>> = urls
            .iter()
            .map(|u| {
                let u = u.trim_end_matches('/');
                list.iter()
                    .find(|e| e.url == u)
                    .cloned()
                    .unwrap_or_else(|| Endpoint::new(u))
            })
            .collect();
        let added = next
            .iter()
            .filter(|e| !list.iter().any(|o| o.url == e.url))
            .count();
        let removed = list
            .iter()
            .filter(|o| !next.iter().any(|e| e.url == o.url))
            .count();
        if added + removed > 0 {
            tracing::info!(
                "{}: {added} server(s) added, {removed} dropped, {} in use",
                watch.path.display(),
                next.len()
            );
        }
        *list = Arc::new(next);
    }

    /// The least-loaded endpoint among those not cooling down (among all
    /// when every one is).
    pub fn acquire(&self) -> Lease<'_> {
        self.acquire_for(None)
    }

    /// The endpoint for a request of the prompt `key`: with
    /// [`Routing::PrefixAffinity`], the healthy endpoint that ranks `key`
    /// highest (rendezvous hashing: a server joining or leaving moves only
    /// the prompts it gains or had), passed over while it carries more
    /// than 1.5 times the average load plus [`AFFINITY_SLACK`]; otherwise,
    /// or without a key, the least-loaded healthy endpoint.
    pub fn acquire_for(&self, key: Option<&str>) -> Lease<'_> {
        self.refresh();
        let list = self.current();
        let now = Instant::now();
        let healthy: Vec<&Arc<Endpoint>> = list.iter().filter(|e| e.up(now)).collect();
        let candidates: Vec<&Arc<Endpoint>> = if healthy.is_empty() {
            list.iter().collect()
        } else {
            healthy
        };
        let affine = match (self.routing, key) {
            (Routing::PrefixAffinity, Some(key)) => {
                let total: usize = candidates.iter().map(|e| e.load()).sum();
                let bound = (total as f64 + 1.0) / candidates.len() as f64 * 1.5 + AFFINITY_SLACK;
                let k = crate::data::validate::fnv1a64(key.as_bytes());
                let mut ranked = candidates.clone();
                ranked.sort_by_key(|e| std::cmp::Reverse(rendezvous(k, e.url_hash)));
                ranked.into_iter().find(|e| (e.load() as f64) < bound)
            }
            _ => None,
        };
        let endpoint = affine
            .or_else(|| candidates.iter().copied().min_by_key(|e| e.load()))
            .expect("a pool has at least one endpoint");
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Lease {
            pool: self,
            endpoint: Arc::clone(endpoint),
        }
    }

    /// Whether every endpoint refused its last [`REFUSALS_BEFORE_GONE`]
    /// connections: no server is listening any more.
    pub fn all_unreachable(&self) -> bool {
        self.current()
            .iter()
            .all(|e| e.refused.load(Ordering::Relaxed) >= REFUSALS_BEFORE_GONE)
    }

    /// The base URLs, in order.
    pub fn urls(&self) -> Vec<String> {
        self.current().iter().map(|e| e.url.clone()).collect()
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    /// Whether the pool is empty (never, once built from a config).
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }
}

/// The file's modification time and size, when it can be read.
fn stamp_of(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The rank of the endpoint whose URL hashes to `url` for the prompt
/// hashed to `key`.
fn rendezvous(key: u64, url: u64) -> u64 {
    // splitmix64's finalizer over the two hashes.
    let mut z = key ^ url.rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Lease<'_> {
    /// The endpoint's base URL.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The attempt succeeded: the endpoint is healthy.
    pub fn success(&self) {
        let e = &self.endpoint;
        e.failures.store(0, Ordering::Relaxed);
        e.refused.store(0, Ordering::Relaxed);
        *e.down_until.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Whether the attempt reached a server: a connection that could not be
    /// made counts toward [`EndpointPool::all_unreachable`], any answer
    /// resets it.
    pub fn connected(&self, connected: bool) {
        let refused = &self.endpoint.refused;
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
        let e = &self.endpoint;
        let failures = e.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= FAILURES_BEFORE_COOLDOWN && self.pool.len() > 1 {
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
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
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
    fn the_file_is_read_again_and_survivors_keep_their_state() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("servers.txt");
        std::fs::write(&file, "http://a/v1\nhttp://b/v1\n").unwrap();
        let p =
            EndpointPool::new(&["http://a/v1".into(), "http://b/v1".into()]).watching(file.clone());
        let held = p.acquire();
        assert_eq!(held.url(), "http://a/v1");
        for _ in 0..FAILURES_BEFORE_COOLDOWN {
            p.acquire_for(None).failure(); // b, the idle one
        }
        // b is cooling down; c joins and a leaves.
        std::fs::write(&file, "# servers\nhttp://b/v1\nhttp://c/v1  # new\n").unwrap();
        std::thread::sleep(WATCH_EVERY + Duration::from_millis(50));
        let next = p.acquire();
        assert_eq!(next.url(), "http://c/v1", "b keeps its cool-down");
        assert_eq!(p.urls(), ["http://b/v1", "http://c/v1"]);
        assert_eq!(
            held.url(),
            "http://a/v1",
            "a request in flight keeps its server"
        );
        drop(held);
        // An empty file keeps the list.
        std::fs::write(&file, "\n").unwrap();
        std::thread::sleep(WATCH_EVERY + Duration::from_millis(50));
        let _ = p.acquire();
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn prefix_affinity_keeps_a_prompt_on_its_server() {
        let urls: Vec<String> = (0..8).map(|i| format!("http://s{i}/v1")).collect();
        let p = EndpointPool::new(&urls).with_routing(Routing::PrefixAffinity);
        let ids: Vec<String> = (0..400).map(|i| format!("prompt-{i}")).collect();
        let home: Vec<String> = ids
            .iter()
            .map(|id| p.acquire_for(Some(id)).url().to_string())
            .collect();
        // The same server every time, and the prompts spread over all.
        for (id, h) in ids.iter().zip(&home) {
            assert_eq!(&p.acquire_for(Some(id)).url().to_string(), h);
        }
        for u in &urls {
            let n = home.iter().filter(|h| *h == u).count();
            assert!((25..=75).contains(&n), "{u}: {n} of 400");
        }
        // A server leaving moves only its own prompts.
        let fewer = EndpointPool::new(&urls[1..]).with_routing(Routing::PrefixAffinity);
        for (id, h) in ids.iter().zip(&home) {
            if h != &urls[0] {
                assert_eq!(fewer.acquire_for(Some(id)).url(), h);
            }
        }
        // A server far above the average load is passed over.
        let busy = p.acquire_for(Some(&ids[0]));
        let held: Vec<_> = (0..8).map(|_| p.acquire_for(Some(&ids[0]))).collect();
        assert!(held.iter().any(|l| l.url() != busy.url()), "load bound");
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
