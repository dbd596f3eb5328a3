//! Client-side pacing: `max_rpm` spaces request starts evenly, `max_tpm`
//! is a token bucket of one second's worth over prompt + completion tokens
//! (the completion side estimated, then corrected as responses report
//! their usage), and a
//! server's `x-ratelimit-remaining-*` / `x-ratelimit-reset-*` headers (sent
//! by OpenAI and several others) hold new requests back until the reset
//! when a limit is exhausted, so rsr slows before it hits the limit instead
//! of discovering it through 429s. Shared by every request of a client.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest wait a server's reset header may impose (a malformed or
/// daily reset is not worth stalling a run for longer; 429s still apply).
const MAX_HEADER_WAIT: Duration = Duration::from_secs(60);

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
        start.saturating_duration_since(now)
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
}
