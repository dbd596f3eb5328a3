//! Client-side pacing: `max_rpm` spaces request starts evenly, `max_tpm`
//! is a token bucket of one second's worth over prompt + completion tokens
//! (the completion side estimated, then corrected as responses report
//! their usage), and a
//! server's `x-ratelimit-remaining-*` / `x-ratelimit-reset-*` headers (sent
//! by OpenAI and several others) hold new requests back until the reset
//! when a limit is exhausted, so rsr slows before it hits the limit instead
//! of discovering it through 429s. A 429 that comes anyway (a server that
//! sends no such headers) pauses every start until its `Retry-After` and
//! halves the rate of starts (the rate seen so far at the first 429; a 429
//! of a request sent before the last halving does not count again); every
//! answer then widens the rate a little, so the run settles just under the
//! server's limit instead of retrying into it. Shared by every request of
//! a client.

use std::collections::VecDeque;

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest wait a server's reset header may impose (a malformed or
/// daily reset is not worth stalling a run for longer; 429s still apply).
const MAX_HEADER_WAIT: Duration = Duration::from_secs(60);

/// The pause after a 429 without `Retry-After`.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
/// Over how long the rate of starts is measured for the first 429.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// The narrowest and the widest spacing 429s bring (1,000 and one start a
/// second): a server slower than that wants `max_rpm` set.
const MIN_SPACING: Duration = Duration::from_millis(1);
const MAX_SPACING: Duration = Duration::from_secs(1);
/// What each answer multiplies the spacing by once 429s set one.
const NARROWING: f64 = 0.99;

/// Paces the requests of one client.
#[derive(Debug)]
pub struct RateLimiter {
    max_rpm: Option<f64>,
    max_tpm: Option<f64>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the next request may start (`max_rpm`).
    next_start: Instant,
    /// Tokens available now (`max_tpm`), and when that was computed.
    tokens: f64,
    refilled: Instant,
    /// Completion tokens per request so far (for the estimate).
    completions: u64,
    completion_tokens: u64,
    /// What the server's last answer said is left of its request and token
    /// limits, each with when it resets; starts are counted against it.
    requests_left: Option<(f64, Instant)>,
    tokens_left: Option<(f64, Instant)>,
    /// After a 429: no start before this.
    paused_until: Option<Instant>,
    /// After 429s: the least time between two starts, and the next start's.
    spacing: Option<Duration>,
    next_spaced: Instant,
    /// When the spacing last widened: 429s of requests sent before it
    /// were answers to the old rate.
    widened: Instant,
    /// Starts within the last [`RATE_WINDOW`].
    recent: VecDeque<Instant>,
}

/// What the server said about its limits in one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerLimits {
    /// `x-ratelimit-remaining-requests`.
    pub remaining_requests: Option<u64>,
    /// `x-ratelimit-reset-requests`.
    pub reset_requests: Option<Duration>,
    /// `x-ratelimit-remaining-tokens`.
    pub remaining_tokens: Option<u64>,
    /// `x-ratelimit-reset-tokens`.
    pub reset_tokens: Option<Duration>,
}

impl ServerLimits {
    /// Reads the headers through `header` (name → value).
    pub fn read(header: impl Fn(&str) -> Option<String>) -> Self {
        let count = |n: &str| header(n).and_then(|v| v.trim().parse().ok());
        let reset = |n: &str| header(n).and_then(|v| parse_reset(&v));
        Self {
            remaining_requests: count("x-ratelimit-remaining-requests"),
            reset_requests: reset("x-ratelimit-reset-requests"),
            remaining_tokens: count("x-ratelimit-remaining-tokens"),
            reset_tokens: reset("x-ratelimit-reset-tokens"),
        }
    }
}

/// A reset time as servers write it: `1s`, `6m0s`, `20ms`, `1h2m3.5s`, or
/// a bare number of seconds.
pub fn parse_reset(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = v.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += n * unit;
        any = true;
    }
    (any && number.is_empty()).then(|| Duration::from_secs_f64(total))
}

impl RateLimiter {
    /// A limiter for `max_rpm` requests and `max_tpm` tokens per minute
    /// (either may be absent); `max_tokens` is the first completion estimate.
    pub fn new(max_rpm: Option<f64>, max_tpm: Option<f64>) -> Self {
        let now = Instant::now();
        Self {
            max_rpm,
            max_tpm,
            state: Mutex::new(State {
                next_start: now,
                // One second's worth: no burst a strict server would refuse.
                tokens: max_tpm.map_or(0.0, |t| t / 60.0),
                refilled: now,
                completions: 0,
                completion_tokens: 0,
                requests_left: None,
                tokens_left: None,
                paused_until: None,
                spacing: None,
                next_spaced: now,
                widened: now,
                recent: VecDeque::new(),
            }),
        }
    }

    /// The completion tokens a request is expected to use: the mean so far,
    /// else `max_tokens`.
    pub fn completion_estimate(&self, max_tokens: u32) -> u64 {
        let s = self.state.lock().expect("limiter lock");
        s.completion_tokens
            .checked_div(s.completions)
            .unwrap_or(u64::from(max_tokens))
    }

    /// How long the next request must wait before it starts by `max_rpm`
    /// and by what the server said is left (`tokens`: its prompt plus
    /// estimated completion tokens), reserving its slot.
    pub fn reserve(&self, tokens: u64, now: Instant) -> Duration {
        let mut guard = self.state.lock().expect("limiter lock");
        let s = &mut *guard;
        let mut start = now;
        // What the server said is left: spent by each start; once used up,
        // nothing starts before its reset.
        for (left, cost) in [
            (&mut s.requests_left, 1.0),
            (&mut s.tokens_left, tokens as f64),
        ] {
            if let Some((remaining, reset)) = *left {
                if reset <= now {
                    *left = None;
                } else if remaining >= cost {
                    *left = Some((remaining - cost, reset));
                } else {
                    // Used up: every start waits for the reset.
                    start = start.max(reset);
                }
            }
        }
        if let Some(rpm) = self.max_rpm {
            let interval = Duration::from_secs_f64(60.0 / rpm);
            start = start.max(s.next_start);
            s.next_start = start + interval;
        }
        // What 429s taught.
        if let Some(until) = s.paused_until {
            start = start.max(until);
        }
        if let Some(spacing) = s.spacing {
            start = start.max(s.next_spaced);
            s.next_spaced = start + spacing;
        }
        while s.recent.front().is_some_and(|&t| t + RATE_WINDOW < start) {
            s.recent.pop_front();
        }
        s.recent.push_back(start);
        start.saturating_duration_since(now)
    }

    /// A 429 came back for a request that `started` then: no start before
    /// `retry_after` (or a second) from `now`, and half the rate of starts
    /// (the rate of the last two seconds at the first 429), unless the
    /// request was sent before the rate was last halved.
    pub fn throttled(&self, retry_after: Option<Duration>, started: Instant, now: Instant) {
        let mut s = self.state.lock().expect("limiter lock");
        let pause = retry_after.unwrap_or(DEFAULT_PAUSE).min(MAX_HEADER_WAIT);
        s.paused_until = Some(s.paused_until.map_or(now + pause, |u| u.max(now + pause)));
        if started < s.widened {
            return;
        }
        let wider = match s.spacing {
            Some(d) => d * 2,
            None => {
                let per_second = s.recent.len().max(1) as f64 / RATE_WINDOW.as_secs_f64();
                Duration::from_secs_f64(2.0 / per_second)
            }
        };
        s.spacing = Some(wider.clamp(MIN_SPACING, MAX_SPACING));
        s.widened = now;
    }

    /// An answer came back: the spacing 429s set narrows a little.
    pub fn answered(&self) {
        let mut s = self.state.lock().expect("limiter lock");
        if let Some(d) = s.spacing {
            s.spacing = Some(d.mul_f64(NARROWING).max(MIN_SPACING));
        }
    }

    /// The tokens [`RateLimiter::reserve`] takes for a request estimated at
    /// `tokens`: at most the bucket (a larger request waits for a full one).
    pub fn taken(&self, tokens: u64) -> u64 {
        match self.max_tpm {
            Some(tpm) => tokens.min((tpm / 60.0) as u64),
            None => tokens,
        }
    }

    /// Takes `tokens` (at most the bucket: a larger request waits for a
    /// full one) from the `max_tpm` bucket, or says how long until they are
    /// there. Tokens are taken only when present, never promised ahead, so
    /// refunds ([`RateLimiter::settle`]) cannot let starts bunch up.
    pub fn try_take(&self, tokens: u64, now: Instant) -> Result<(), Duration> {
        let Some(tpm) = self.max_tpm else {
            return Ok(());
        };
        let rate = tpm / 60.0;
        let mut s = self.state.lock().expect("limiter lock");
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(rate);
        s.refilled = now;
        let want = (tokens as f64).min(rate);
        if s.tokens >= want {
            s.tokens -= want;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((want - s.tokens) / rate))
        }
    }

    /// Waits for the next request's turn.
    pub async fn acquire(&self, tokens: u64) {
        let wait = self.reserve(tokens, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        while let Err(wait) = self.try_take(tokens, Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Corrects the token bucket once a request's usage is known: `taken`
    /// was reserved, `used` was spent, `completion` of it by the answer.
    /// A failed request is not refunded (a 429 means the server is short).
    pub fn settle(&self, taken: u64, used: u64, completion: Option<u64>) {
        let mut s = self.state.lock().expect("limiter lock");
        if let Some(c) = completion {
            s.completions += 1;
            s.completion_tokens += c;
        }
        if let Some(tpm) = self.max_tpm {
            s.tokens = (s.tokens + taken as f64 - used as f64).min(tpm / 60.0);
        }
    }

    /// Takes what a server says is left of its limits (and when they
    /// reset): later starts are counted against it, and once it is used up
    /// nothing starts before the reset.
    pub fn observe(&self, limits: &ServerLimits, now: Instant) {
        let left = |remaining: Option<u64>, reset: Option<Duration>| {
            Some((remaining? as f64, now + reset?.min(MAX_HEADER_WAIT)))
        };
        // Answers of requests sent earlier report more than is left now:
        // until the reset, only a lower figure replaces the one kept.
        let keep_lower = |kept: &mut Option<(f64, Instant)>, new: Option<(f64, Instant)>| {
            if let Some((r, reset)) = new {
                *kept = Some(match *kept {
                    Some((k, at)) if at > now && k <= r => (k, at.max(reset)),
                    _ => (r, reset),
                });
            }
        };
        let mut s = self.state.lock().expect("limiter lock");
        keep_lower(
            &mut s.requests_left,
            left(limits.remaining_requests, limits.reset_requests),
        );
        keep_lower(
            &mut s.tokens_left,
            left(limits.remaining_tokens, limits.reset_tokens),
        );
    }

    /// Whether `max_tpm` is set (usage must then be read from answers).
    pub fn counts_tokens(&self) -> bool {
        self.max_tpm.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_as_servers_write_them() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_reset("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_reset("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_reset("5x"), None);
    }

    #[test]
    fn requests_are_spaced_evenly() {
        let l = RateLimiter::new(Some(600.0), None);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..5).map(|_| l.reserve(0, t0)).collect();
        let ms: Vec<u128> = waits.iter().map(|w| w.as_millis()).collect();
        assert_eq!(ms, vec![0, 100, 200, 300, 400]);
        // Time passes: the next slot is the next free one.
        assert_eq!(l.reserve(0, t0 + Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn tokens_are_a_bucket_corrected_by_usage() {
        let l = RateLimiter::new(None, Some(6000.0)); // 100 tokens/s, 100 at start
        let t0 = Instant::now();
        assert_eq!(l.try_take(80, t0), Ok(()));
        // 20 left: 50 more must wait 0.3 s of refill, and nothing is taken.
        assert_eq!(l.try_take(50, t0), Err(Duration::from_millis(300)));
        assert_eq!(l.try_take(50, t0 + Duration::from_millis(300)), Ok(()));
        // The first request used less than it took: refunded.
        let t1 = t0 + Duration::from_millis(300);
        l.settle(80, 40, Some(30));
        assert_eq!(l.try_take(40, t1), Ok(()));
        assert_eq!(l.completion_estimate(4096), 30);
        // A request larger than the bucket waits for a full one.
        let l = RateLimiter::new(None, Some(6000.0));
        assert_eq!(l.try_take(4000, t0), Ok(()));
        assert_eq!(l.try_take(10, t0), Err(Duration::from_millis(100)));
        assert_eq!(l.taken(4000), 100);
    }

    #[test]
    fn server_limits_are_spent_then_hold_requests_until_reset() {
        let l = RateLimiter::new(None, None);
        let t0 = Instant::now();
        l.observe(
            &ServerLimits {
                remaining_requests: Some(2),
                reset_requests: Some(Duration::from_secs(1)),
                ..Default::default()
            },
            t0,
        );
        // Two left: two start now, every later one waits for the reset.
        assert_eq!(l.reserve(0, t0), Duration::ZERO);
        assert_eq!(l.reserve(0, t0), Duration::ZERO);
        assert_eq!(l.reserve(0, t0), Duration::from_secs(1));
        assert_eq!(l.reserve(0, t0), Duration::from_secs(1));
        // A late answer of an earlier request does not raise what is left.
        l.observe(
            &ServerLimits {
                remaining_requests: Some(5),
                reset_requests: Some(Duration::from_secs(1)),
                ..Default::default()
            },
            t0,
        );
        assert_eq!(l.reserve(0, t0), Duration::from_secs(1));
        // After the reset, a new figure counts.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(l.reserve(0, t1), Duration::ZERO);
        let l = RateLimiter::new(None, None);
        l.observe(
            &ServerLimits {
                remaining_requests: Some(0),
                reset_requests: Some(Duration::from_millis(250)),
                ..Default::default()
            },
            t0,
        );
        assert_eq!(l.reserve(0, t0), Duration::from_millis(250));
        assert_eq!(l.reserve(0, t0 + Duration::from_secs(1)), Duration::ZERO);
        let limits = ServerLimits::read(|n| match n {
            "x-ratelimit-remaining-tokens" => Some("0".into()),
            "x-ratelimit-reset-tokens" => Some("6m0s".into()),
            _ => None,
        });
        l.observe(&limits, t0);
        assert_eq!(l.reserve(10, t0), MAX_HEADER_WAIT);
    }

    #[test]
    fn a_429_pauses_every_start_then_halves_the_rate_until_answers_widen_it() {
        let l = RateLimiter::new(None, None);
        let t0 = Instant::now();
        // 100 starts in the last two seconds: 50 a second.
        for i in 0..100 {
            assert_eq!(l.reserve(0, t0 + Duration::from_millis(i)), Duration::ZERO);
        }
        let t1 = t0 + Duration::from_millis(100);
        l.throttled(Some(Duration::from_millis(500)), t0, t1);
        // Paused, then 25 a second: 40 ms apart.
        assert_eq!(l.reserve(0, t1), Duration::from_millis(500));
        assert_eq!(l.reserve(0, t1), Duration::from_millis(540));
        // A 429 of a request sent before the halving does not halve again.
        l.throttled(Some(Duration::from_millis(100)), t0, t1);
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(l.reserve(0, t2), Duration::ZERO);
        assert_eq!(l.reserve(0, t2), Duration::from_millis(40));
        // One sent after it does: 80 ms.
        l.throttled(None, t2, t2);
        let t3 = t2 + Duration::from_secs(2);
        assert_eq!(l.reserve(0, t3), Duration::ZERO);
        assert_eq!(l.reserve(0, t3), Duration::from_millis(80));
        // Answers narrow it, down to a millisecond.
        for _ in 0..1000 {
            l.answered();
        }
        let t4 = t3 + Duration::from_secs(2);
        assert_eq!(l.reserve(0, t4), Duration::ZERO);
        assert_eq!(l.reserve(0, t4), Duration::from_millis(1));
    }
}
