//! Pitfall guards, each over the first window of a run: stop a run whose
//! outputs are mostly truncated ([`TruncationGuard`]), whose prompts get
//! only identical responses ([`IdenticalGuard`]), or whose responses hold
//! no answer the verifier can find ([`AnswerGuard`]); and warn when
//! `max_tokens` looks small for a reasoning model. A guard decides once,
//! when its window fills; its figures go to `state.json` either way.

/// Watches the first `window` finished responses of a run.
#[derive(Debug)]
pub struct TruncationGuard {
    window: RateWindow,
    tokens: Vec<u32>,
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
            window: RateWindow::new(window, max_rate),
            tokens: Vec::with_capacity(window),
        }
    }

    /// Records one finished response (errors excluded); decides once, when
    /// the window fills.
    pub fn observe(
        &mut self,
        truncated: bool,
        completion_tokens: Option<u32>,
    ) -> Option<Decision<TruncationReport>> {
        if !self.window.open() {
            return None;
        }
        self.tokens.extend(completion_tokens);
        let fired = self.window.observe(truncated)?;
        let report = TruncationReport {
            seen: self.window.seen,
            truncated: self.window.hits,
            p95_tokens: percentile(&mut self.tokens, 0.95),
        };
        self.tokens = Vec::new();
        Some(Decision { report, fired })
    }
}

/// A guard's figures when its window filled.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<R> {
    /// What the window held.
    pub report: R,
    /// Whether the rate was above the threshold.
    pub fired: bool,
}

/// A report's window: observations and hits.
pub trait Window {
    /// Observations in the window.
    fn seen(&self) -> usize;
    /// Of which hits.
    fn hits(&self) -> usize;
}

impl<R: Window> Decision<R> {
    /// The figures `state.json` keeps, against threshold `max_rate`.
    pub fn record(&self, max_rate: f64) -> crate::store::state::GuardRecord {
        crate::store::state::GuardRecord {
            seen: self.report.seen() as u64,
            hits: self.report.hits() as u64,
            max_rate,
            fired: self.fired,
        }
    }
}

impl Window for TruncationReport {
    fn seen(&self) -> usize {
        self.seen
    }
    fn hits(&self) -> usize {
        self.truncated
    }
}

impl Window for IdenticalReport {
    fn seen(&self) -> usize {
        self.seen
    }
    fn hits(&self) -> usize {
        self.identical
    }
}

impl Window for AnswerReport {
    fn seen(&self) -> usize {
        self.seen
    }
    fn hits(&self) -> usize {
        self.missing
    }
}

/// Counts hits among the first `window` observations and decides once.
#[derive(Debug)]
struct RateWindow {
    window: usize,
    max_rate: f64,
    seen: usize,
    hits: usize,
    decided: bool,
}

impl RateWindow {
    fn new(window: usize, max_rate: f64) -> Self {
        Self {
            window,
            max_rate,
            seen: 0,
            hits: 0,
            decided: false,
        }
    }

    /// Whether observations still count.
    fn open(&self) -> bool {
        !self.decided
    }

    /// Counts one observation; `Some(fired)` when this one fills the window.
    fn observe(&mut self, hit: bool) -> Option<bool> {
        if self.decided {
            return None;
        }
        self.seen += 1;
        self.hits += usize::from(hit);
        if self.seen < self.window {
            return None;
        }
        self.decided = true;
        Some(self.hits as f64 / self.seen as f64 > self.max_rate)
    }
}

/// The sampling guard: over the first `window` prompts with two or more
/// valid responses, the share whose responses were all identical (after
/// folding case and whitespace).
#[derive(Debug)]
pub struct IdenticalGuard(RateWindow);

/// What the sampling guard saw.
#[derive(Debug, Clone, PartialEq)]
pub struct IdenticalReport {
    /// Prompts looked at.
    pub seen: usize,
    /// Of which with only identical responses.
    pub identical: usize,
}

impl IdenticalReport {
    /// `identical / seen`.
    pub fn rate(&self) -> f64 {
        self.identical as f64 / self.seen.max(1) as f64
    }

    /// The cause, the numbers and the fix.
    pub fn message(&self, temperature: f64) -> String {
        let t = temperature;
        format!(
            "{} of the first {} prompts with two or more valid responses ({:.1}%) got only identical responses (sampler.temperature: {t}); rejection sampling needs different responses per prompt. Raise sampler.temperature (0.6 to 1.0 is usual), drop sampler.seed if it fixes every choice of a request, or set sampler.use_n=false if the server ignores n. These keys are fixed for a work dir: start a new one, or resume this one with sampling.allow_identical=true to keep going anyway",
            self.identical,
            self.seen,
            100.0 * self.rate()
        )
    }
}

impl IdenticalGuard {
    /// A guard over the first `window` such prompts with threshold `max_rate`.
    pub fn new(window: usize, max_rate: f64) -> Self {
        Self(RateWindow::new(window, max_rate))
    }

    /// Records one prompt's valid responses (as hashes of their folded
    /// text); decides once, when the window fills.
    pub fn observe(&mut self, hashes: &[u64]) -> Option<Decision<IdenticalReport>> {
        let identical = hashes.windows(2).all(|w| w[0] == w[1]);
        let fired = self.0.observe(identical)?;
        Some(Decision {
            report: IdenticalReport {
                seen: self.0.seen,
                identical: self.0.hits,
            },
            fired,
        })
    }
}

pub use crate::store::rollout::fold_hash;

/// The extraction guard: over the first `window` valid responses with a
/// gold answer, the share in which the verifier found no answer at all
/// (not a wrong one). Keeps a few endings as examples, and notices a
/// window where answers were found but none passed (a warning: a hard
/// prompt set looks like that too).
#[derive(Debug)]
pub struct AnswerGuard {
    window: RateWindow,
    passed: usize,
    missing_examples: Vec<String>,
    wrong_examples: Vec<String>,
}

/// What the extraction guard saw.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerReport {
    /// Responses looked at.
    pub seen: usize,
    /// Of which with no answer found.
    pub missing: usize,
    /// Of which passing.
    pub passed: usize,
    /// Endings of responses with no answer found.
    pub missing_examples: Vec<String>,
    /// Endings of responses with a wrong answer, with what was read.
    pub wrong_examples: Vec<String>,
}

/// Examples kept per kind.
const EXAMPLES: usize = 3;

impl AnswerReport {
    /// `missing / seen`.
    pub fn rate(&self) -> f64 {
        self.missing as f64 / self.seen.max(1) as f64
    }

    fn examples(list: &[String]) -> String {
        list.iter().map(|e| format!("\n  …{e}")).collect::<String>()
    }

    /// Why the run stops: the numbers, examples and what to try.
    pub fn message(&self, verifier: &str) -> String {
        format!(
            "{} of the first {} valid responses with a gold answer ({:.1}%) hold no answer the verifier `{verifier}` can find (it looks after the thinking: a box, a stated final answer, …; see docs/verifiers.md). How some of them end:{}\nTry another verifier.type, or a prompt that asks for the final answer in \\boxed{{}} (data.system_prompt or data.prompt_template) in a new work dir; saved responses can be re-scored later with rsr verify. Resume with sampling.allow_no_answer=true to keep going anyway",
            self.missing,
            self.seen,
            100.0 * self.rate(),
            Self::examples(&self.missing_examples)
        )
    }

    /// A warning when answers were found but none of the window passed.
    pub fn no_pass_warning(&self, verifier: &str) -> Option<String> {
        (self.passed == 0 && self.missing < self.seen).then(|| {
            format!(
                "none of the first {} valid responses with a gold answer passed, though `{verifier}` found answers in {} of them: check that the gold answers and the extracted ones are comparable (a hard prompt set looks like this too). How some of them end:{}",
                self.seen,
                self.seen - self.missing,
                Self::examples(&self.wrong_examples)
            )
        })
    }
}

impl AnswerGuard {
    /// A guard over the first `window` responses with threshold `max_rate`.
    pub fn new(window: usize, max_rate: f64) -> Self {
        Self {
            window: RateWindow::new(window, max_rate),
            passed: 0,
            missing_examples: Vec::new(),
            wrong_examples: Vec::new(),
        }
    }

    /// Records one valid response with a gold answer: what the verifier
    /// read (`pred`), whether it passed, and the response's final part.
    pub fn observe(
        &mut self,
        pred: Option<&str>,
        passed: bool,
        final_part: &str,
    ) -> Option<Decision<AnswerReport>> {
        if !self.window.open() {
            return None;
        }
        let ending = tail(final_part, 160);
        match pred {
            // Distinct examples only: one ending three times says less.
            None if self.missing_examples.len() < EXAMPLES
                && !self.missing_examples.contains(&ending) =>
            {
                self.missing_examples.push(ending)
            }
            Some(p) if !passed && self.wrong_examples.len() < EXAMPLES => {
                let example = format!("{ending}  [read: {p}]");
                if !self.wrong_examples.contains(&example) {
                    self.wrong_examples.push(example)
                }
            }
            _ => {}
        }
        self.passed += usize::from(passed);
        let fired = self.window.observe(pred.is_none())?;
        Some(Decision {
            report: AnswerReport {
                seen: self.window.seen,
                missing: self.window.hits,
                passed: self.passed,
                missing_examples: std::mem::take(&mut self.missing_examples),
                wrong_examples: std::mem::take(&mut self.wrong_examples),
            },
            fired,
        })
    }
}

/// The last `n` characters of `text` on one line.
fn tail(text: &str, n: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let skip = flat.chars().count().saturating_sub(n);
    flat.chars().skip(skip).collect()
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
        assert!(reports[0].fired);
        let reports: Vec<TruncationReport> = reports.into_iter().map(|d| d.report).collect();
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
        assert!((0..9).all(|i| g.observe(i == 0, None).is_none()));
        assert!(!g.observe(false, None).unwrap().fired);
    }

    #[test]
    fn the_sampling_guard_decides_once_on_identical_prompts() {
        let mut g = IdenticalGuard::new(4, 0.5);
        let same = [
            fold_hash("The answer is 4."),
            fold_hash("the  answer is 4."),
        ];
        let different = [fold_hash("The answer is 4."), fold_hash("It is 5.")];
        assert!(g.observe(&same).is_none());
        assert!(g.observe(&same).is_none());
        assert!(g.observe(&different).is_none());
        let d = g.observe(&same).expect("the window is full");
        assert!(d.fired);
        assert_eq!((d.report.seen, d.report.identical), (4, 3));
        assert!(d.report.message(0.0).contains("sampler.temperature: 0"));
        assert!(g.observe(&same).is_none());
        let mut g = IdenticalGuard::new(2, 0.5);
        g.observe(&same);
        assert!(!g.observe(&different).unwrap().fired);
    }

    #[test]
    fn the_extraction_guard_keeps_examples_and_warns_when_nothing_passes() {
        let mut g = AnswerGuard::new(4, 0.5);
        assert!(g.observe(None, false, "I could not solve it.").is_none());
        assert!(g.observe(None, false, "No idea, sorry.").is_none());
        assert!(g.observe(None, false, "Done.").is_none());
        let d = g.observe(Some("7"), false, "The answer is 7.").unwrap();
        assert!(d.fired);
        assert_eq!(
            (d.report.seen, d.report.missing, d.report.passed),
            (4, 3, 0)
        );
        let msg = d.report.message("math-rlvr");
        assert!(
            msg.contains("…I could not solve it.") && msg.contains("allow_no_answer"),
            "{msg}"
        );
        let mut g = AnswerGuard::new(2, 0.5);
        g.observe(Some("3"), false, "The answer is 3.");
        let d = g.observe(Some("5"), false, "So 5.").unwrap();
        assert!(!d.fired);
        let w = d
            .report
            .no_pass_warning("math-rlvr")
            .expect("nothing passed");
        assert!(w.contains("[read: 3]"), "{w}");
    }

    #[test]
    fn reasoning_model_names() {
        assert!(max_tokens_warning("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 4096).is_some());
        assert!(max_tokens_warning("Qwen/QwQ-32B", 8192).is_some());
        assert!(max_tokens_warning("Qwen/QwQ-32B", 32768).is_none());
        assert!(max_tokens_warning("meta-llama/Llama-3.1-8B-Instruct", 1024).is_none());
    }
}
