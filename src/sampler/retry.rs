//! Backoff between attempts of one request, the server's own retry hint,
//! and a small random source for the jitter.

use std::time::{Duration, SystemTime};

/// Exponential backoff: `base`, `2·base`, `4·base`… capped at `cap`, each
/// stretched by up to 25 % of jitter so that retries of many requests do not
/// arrive together. A server's retry hint ([`server_hint`]) replaces the
/// exponential delay, capped at `cap` as well.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (0 for the first retry); `jitter`
    /// is uniform in `[0, 1)`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        let base = retry_after.map_or(exp, |r| r.min(self.cap));
        base.mul_f64(1.0 + 0.25 * jitter.clamp(0.0, 1.0))
    }
}

/// The wait a server asks for: `retry-after-ms` (milliseconds, sent by
/// OpenAI and Azure) first, else `Retry-After` as seconds or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) relative to `now`. Values that do not
/// parse are ignored; a date in the past means no wait.
pub fn server_hint(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    let seconds = |v: &str, scale: f64| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s / scale))
    };
    if let Some(d) = retry_after_ms.and_then(|v| seconds(v, 1000.0)) {
        return Some(d);
    }
    let v = retry_after?;
    seconds(v, 1.0).or_else(|| {
        let at = http_date(v)?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    })
}

/// An HTTP date: the IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and
/// the obsolete RFC 850 and asctime forms recipients must also accept.
fn http_date(v: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(v.trim()).ok()
}

/// SplitMix64: a tiny, fast, seedable generator for jitter and the mock
/// server's coin flips (not for anything secret).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator seeded from the clock and a counter.
    pub fn from_entropy() -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_honour_retry_after() {
        let p = RetryPolicy {
            max_retries: 5,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let secs = |a| p.delay(a, None, 0.0).as_secs_f64();
        assert_eq!([secs(0), secs(1), secs(2), secs(3)], [1.0, 2.0, 4.0, 8.0]);
        assert_eq!(secs(10), 60.0);
        assert_eq!(secs(200), 60.0);
        assert_eq!(p.delay(0, None, 1.0), Duration::from_millis(1250));
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(2)), 0.0),
            Duration::from_secs(2)
        );
        // A server asking for an hour gets the cap.
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn server_hints_in_milliseconds_seconds_and_dates() {
        // 1994-11-06 08:49:37 UTC.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let hint = |ms, s| server_hint(ms, s, now);
        assert_eq!(
            hint(Some("1500"), Some("9")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(hint(Some("soon"), Some("9")), Some(Duration::from_secs(9)));
        assert_eq!(hint(None, Some(" 0.5 ")), Some(Duration::from_millis(500)));
        assert_eq!(
            hint(None, Some("Sun, 06 Nov 1994 08:50:07 GMT")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            hint(None, Some("Sun, 06 Nov 1994 08:49:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(
            http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH)
        );
        // 2024-02-29 is a leap day: 19,782 days after the epoch.
        assert_eq!(
            http_date("Thu, 29 Feb 2024 00:00:01 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(19_782 * 86_400 + 1))
        );
        for bad in [
            "-1",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(hint(None, Some(bad)), None, "{bad}");
        }
        assert_eq!(hint(None, None), None);
    }

    #[test]
    fn splitmix_is_uniform_enough() {
        let mut r = SplitMix::new(7);
        let mean = (0..10_000).map(|_| r.next_f64()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_ne!(SplitMix::new(1).next_u64(), SplitMix::new(2).next_u64());
    }
}
