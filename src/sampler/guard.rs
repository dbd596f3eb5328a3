//! Pitfall guards: stop a run whose outputs are mostly truncated, and warn
//! when `max_tokens` looks small for a reasoning model.

/// Watches the first `window` finished responses of a run.
#[derive(Debug)]
pub struct TruncationGuard {
    window: usize,
    max_rate: f64,
    seen: usize,
    truncated: usize,
    tokens: Vec<u32>,
    decided: bool,
}

/// The guard's finding once its window is full and the rate too high.
#[derive(Debug, Clone, PartialEq)]
pub struct TruncationReport {
    /// Responses looked at.
    pub seen: usize,
    /// Of which truncated.
    pub truncated: usize,
    /// 95th percentile of completion tokens seen.
    pub p95_tokens: Option<u32>,
}

impl TruncationReport {
    /// `truncated / seen`.
    pub fn rate(&self) -> f64 {
        self.truncated as f64 / self.seen.max(1) as f64
    }

    /// A message naming the rate, the budget and what to do.
    pub fn message(&self, max_tokens: u32) -> String {
        let p95 = self
            .p95_tokens
            .map_or("unknown".to_string(), |t| t.to_string());
        format!(
            "{} of the first {} responses ({:.1}%) were truncated (finish_reason=length or \
             unclosed thinking) with sampler.max_tokens={max_tokens}; p95 completion length \
             {p95} tokens. Start a new work dir with a larger sampler.max_tokens, or resume \
             this one with sampling.allow_truncation=true to keep going anyway",
            self.truncated,
            self.seen,
            100.0 * self.rate()
        )
    }
}

impl TruncationGuard {
    /// A guard over the first `window` responses with threshold `max_rate`.
    pub fn new(window: usize, max_rate: f64) -> Self {
        Self {
            window,
            max_rate,
            seen: 0,
            truncated: 0,
            tokens: Vec::with_capacity(window),
            decided: false,
        }
    }

    /// Records one finished response (errors excluded); returns the report
    /// once, when the window fills with a rate above the threshold.
    pub fn observe(
        &mut self,
        truncated: bool,
        completion_tokens: Option<u32>,
    ) -> Option<TruncationReport> {
        if self.decided {
            return None;
        }
        self.seen += 1;
        self.truncated += usize::from(truncated);
        self.tokens.extend(completion_tokens);
        if self.seen < self.window {
            return None;
        }
        self.decided = true;
        let report = TruncationReport {
            seen: self.seen,
            truncated: self.truncated,
            p95_tokens: percentile(&mut self.tokens, 0.95),
        };
        self.tokens = Vec::new();
        (report.rate() > self.max_rate).then_some(report)
    }
}

fn percentile(values: &mut [u32], q: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64) * q).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// Below this budget a reasoning model's outputs are often cut off.
pub const REASONING_MIN_TOKENS: u32 = 16_384;

/// A warning when `model` looks like a reasoning model and `max_tokens` is
/// below [`REASONING_MIN_TOKENS`].
pub fn max_tokens_warning(model: &str, max_tokens: u32) -> Option<String> {
    let m = model.to_ascii_lowercase();
    let reasoning = [
        "-r1",
        "r1-",
        "qwq",
        "think",
        "reason",
        "o1",
        "o3",
        "o4-",
        "gpt-oss",
        "qwen3",
        "magistral",
        "openthinker",
        "skywork-or1",
        "acereason",
        "deepscaler",
        "light-r1",
    ]
    .iter()
    .any(|k| m.contains(k));
    (reasoning && max_tokens < REASONING_MIN_TOKENS).then(|| {
        format!(
            "sampler.max_tokens={max_tokens} looks small for `{model}`, which looks like a \
             reasoning model: its thinking alone often takes more, and truncated responses \
             are wasted. Consider {REASONING_MIN_TOKENS} or more"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_once_above_the_rate() {
        let mut g = TruncationGuard::new(10, 0.1);
        let mut reports = Vec::new();
        for i in 0..30 {
            reports.extend(g.observe(i % 4 == 0, Some(100 + i)));
        }
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].seen, 10);
        assert_eq!(reports[0].truncated, 3);
        assert_eq!(reports[0].p95_tokens, Some(109));
        let msg = reports[0].message(512);
        assert!(
            msg.contains("30.0%") && msg.contains("max_tokens=512") && msg.contains("109"),
            "{msg}"
        );
    }

    #[test]
    fn stays_quiet_at_or_below_the_rate() {
        let mut g = TruncationGuard::new(10, 0.1);
        assert!((0..10).all(|i| g.observe(i == 0, None).is_none()));
    }

    #[test]
    fn reasoning_model_names() {
        assert!(max_tokens_warning("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 4096).is_some());
        assert!(max_tokens_warning("Qwen/QwQ-32B", 8192).is_some());
        assert!(max_tokens_warning("Qwen/QwQ-32B", 32768).is_none());
        assert!(max_tokens_warning("meta-llama/Llama-3.1-8B-Instruct", 1024).is_none());
    }
}
