//! Run counters and how they are shown: a live bar on a terminal, a log line
//! every few seconds otherwise (and always in `logs/run.log`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain log line is written.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Totals of one sampling run (this process only).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counters {
    /// Prompts finished (including those finished by an earlier run).
    pub prompts_done: u64,
    /// Of those, prompts an earlier run had already finished (found
    /// complete on resume, with nothing to request).
    pub prompts_resumed: u64,
    /// Prompts in the unfinished shards.
    pub prompts_total: u64,
    /// Prompts left unfinished because their requests kept failing.
    pub prompts_unfinished: u64,
    /// Requests completed (after retries).
    pub requests: u64,
    /// Finished rollouts written (responses, truncated ones included;
    /// failed requests are not rollouts).
    pub rollouts: u64,
    /// Rollouts that count toward `max_rollouts`.
    pub valid: u64,
    /// Valid rollouts that scored ≥ 1.
    pub passed: u64,
    /// Truncated responses.
    pub truncated: u64,
    /// Rollouts whose request failed (each is requested again).
    pub errors: u64,
    /// Retries made.
    pub retries: u64,
    /// Completion tokens received.
    pub completion_tokens: u64,
    /// Prompt tokens of the requests answered (once per request).
    pub prompt_tokens: u64,
    /// `pricing.input` and `pricing.output` (USD per million tokens), for
    /// the cost in the progress line.
    pub prices: Option<(f64, f64)>,
    /// The verdict stage's name and totals, when verdicts come after the
    /// response (shown apart from sampling).
    pub verdicts: Option<(&'static str, super::verdicts::StageCounters)>,
}

impl Counters {
    /// One line: prompts, rollouts, pass and truncation rates, errors, rates.
    pub fn line(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let pct = |a: u64, b: u64| {
            if b == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * a as f64 / b as f64)
            }
        };
        let mut line = format!(
            "prompts {}/{} | valid {} | pass {} | truncated {} | errors {} | retries {} | {:.1} req/s | {:.0} tok/s",
            self.prompts_done,
            self.prompts_total,
            self.valid,
            pct(self.passed, self.valid),
            pct(self.truncated, self.rollouts),
            self.errors,
            self.retries,
            self.requests as f64 / secs,
            self.completion_tokens as f64 / secs,
        );
        line.push_str(&self.spending());
        line.push_str(&verdicts(self, secs));
        line
    }

    /// ` | 12345 tokens (≈ 250000 for the run) | $0.0123 (≈ $0.25)`: this
    /// run's tokens and cost so far and projected from the prompts it
    /// finished; empty before the first answer.
    pub fn spending(&self) -> String {
        let tokens = self.prompt_tokens + self.completion_tokens;
        if tokens == 0 {
            return String::new();
        }
        let cost = |t_in: f64, t_out: f64| self.prices.map(|(i, o)| (t_in * i + t_out * o) / 1e6);
        let mut out = format!(" | {tokens} tokens");
        let projected = self.projection();
        if let Some(f) = projected {
            out.push_str(&format!(" (≈ {:.0} for the run)", tokens as f64 * f));
        }
        if let Some(c) = cost(self.prompt_tokens as f64, self.completion_tokens as f64) {
            out.push_str(&format!(" | ${c:.4}"));
            if let Some(f) = projected {
                out.push_str(&format!(" (≈ ${:.4})", c * f));
            }
        }
        out
    }

    /// How many times what was spent so far the whole run will spend: the
    /// prompts this run has to finish over those it finished (`None` before
    /// the first).
    pub fn projection(&self) -> Option<f64> {
        let done = self.prompts_done.saturating_sub(self.prompts_resumed);
        let todo = self.prompts_total.saturating_sub(self.prompts_resumed);
        (done > 0).then(|| todo as f64 / done as f64)
    }
}

/// The progress display of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    /// A bar on stderr when it is a terminal (and not `quiet`), else log lines.
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} prompts {elapsed_precise} ETA {eta} | {msg}",
                )
                .expect("valid template")
                .progress_chars("##-"),
            );
            crate::logging::set_progress_bar(Some(bar.clone()));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_log: Instant::now(),
        }
    }

    /// Shows the counters (the bar at once; the log line every few seconds).
    pub fn update(&mut self, c: &Counters) {
        let elapsed = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.set_position(c.prompts_done);
            bar.set_message(short(c, elapsed));
        }
        if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            let eta = eta(c, elapsed);
            if self.bar.is_some() {
                tracing::debug!("{} | ETA {eta}", c.line(elapsed));
            } else {
                tracing::info!("{} | ETA {eta}", c.line(elapsed));
            }
        }
    }

    /// Seconds since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            crate::logging::set_progress_bar(None);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Time left at the rate this process finishes prompts (those an earlier
/// run finished do not count), as `1h02m`, `3m05s` or `42s`; `-` before the
/// first prompt finishes.
fn eta(c: &Counters, elapsed: Duration) -> String {
    let done = c.prompts_done.saturating_sub(c.prompts_resumed);
    let left = c.prompts_total.saturating_sub(c.prompts_done);
    if done == 0 {
        return "-".into();
    }
    let secs = (elapsed.as_secs_f64() * left as f64 / done as f64).round() as u64;
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

fn short(c: &Counters, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let mut line = format!(
        "valid {} pass {:.0}% trunc {:.1}% err {} retry {} | {:.1} req/s {:.0} tok/s{}",
        c.valid,
        rate(c.passed, c.valid),
        rate(c.truncated, c.rollouts - c.errors),
        c.errors,
        c.retries,
        c.requests as f64 / secs,
        c.completion_tokens as f64 / secs,
        c.spending()
    );
    line.push_str(&verdicts(c, secs));
    line
}

/// ` | judge: 120 verdicts, 8 waiting, 4 in flight, 3.1 req/s[, 2 failed]`
/// for a run whose verdicts come after the response; empty otherwise.
fn verdicts(c: &Counters, secs: f64) -> String {
    let Some((name, v)) = c.verdicts else {
        return String::new();
    };
    let mut out = format!(
        " | {name}: {} verdicts, {} waiting, {} in flight, {:.1} req/s",
        v.verdicts,
        v.pending,
        v.in_flight,
        v.requests as f64 / secs
    );
    if v.failed_requests > 0 {
        out.push_str(&format!(", {} failed", v.failed_requests));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_so_far_and_projected_from_the_prompts_this_run_finished() {
        let mut c = Counters {
            prompts_total: 110,
            prompts_resumed: 10,
            prompts_done: 10,
            ..Counters::default()
        };
        assert_eq!(c.spending(), "");
        c.prompt_tokens = 1_000;
        c.completion_tokens = 9_000;
        // Nothing finished by this run yet: no projection.
        assert_eq!(c.spending(), " | 10000 tokens");
        c.prompts_done = 30; // 20 of the 100 this run has to do
        c.prices = Some((1.0, 2.0));
        assert_eq!(
            c.spending(),
            " | 10000 tokens (≈ 50000 for the run) | $0.0190 (≈ $0.0950)"
        );
    }

    #[test]
    fn verdicts_that_come_later_are_shown_apart_from_sampling() {
        let mut c = Counters::default();
        assert!(!c.line(Duration::from_secs(10)).contains("judge"));
        c.verdicts = Some((
            "judge",
            crate::sampler::verdicts::StageCounters {
                verdicts: 120,
                requests: 31,
                failed_requests: 2,
                in_flight: 4,
                pending: 8,
                ..Default::default()
            },
        ));
        let tail = " | judge: 120 verdicts, 8 waiting, 4 in flight, 3.1 req/s, 2 failed";
        assert!(c.line(Duration::from_secs(10)).ends_with(tail));
        assert!(short(&c, Duration::from_secs(10)).ends_with(tail));
    }

    #[test]
    fn eta_follows_this_process_rate() {
        let c = |done, resumed, total| Counters {
            prompts_done: done,
            prompts_resumed: resumed,
            prompts_total: total,
            ..Counters::default()
        };
        let s = Duration::from_secs;
        assert_eq!(eta(&c(10, 10, 100), s(5)), "-");
        // 10 prompts in 20 s, 80 left: 160 s.
        assert_eq!(eta(&c(20, 10, 100), s(20)), "2m40s");
        assert_eq!(eta(&c(1, 0, 100), s(1)), "1m39s");
        assert_eq!(eta(&c(1, 0, 10_000), s(2)), "5h33m");
        assert_eq!(eta(&c(99, 0, 100), s(99)), "1s");
        assert_eq!(eta(&c(100, 0, 100), s(99)), "0s");
    }
}
