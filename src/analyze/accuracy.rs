//! Accuracy as an evaluation reports it: the mean over prompts of each
//! prompt's share of passing rollouts (a truncated or unscored response
//! counts as a failure), with a 95% confidence interval, and the paired
//! difference of two runs over the prompts they share.
//!
//! One rollout per prompt gives a proportion, whose interval is Wilson's
//! score interval (right at small n and near 0 or 1, where the normal one
//! is not). Several rollouts per prompt are not independent trials: the
//! interval is the normal one on the per-prompt means (the prompts are the
//! sample; the standard error of their mean clusters the rollouts of a
//! prompt), as "Adding Error Bars to Evals" (Miller, 2024) recommends —
//! except when every prompt passed (or failed) every rollout, where that
//! interval collapses to a point and Wilson's over the prompts is used. A
//! difference is paired by prompt: the interval of the mean per-prompt
//! difference, far narrower than two independent intervals when the runs
//! answer the same questions.

use serde::{Deserialize, Serialize};

/// The 97.5th percentile of the standard normal: a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Wilson's score interval (one rollout per prompt; or over the
    /// prompts when every rollout of every prompt had the same outcome).
    Wilson,
    /// Normal interval on the per-prompt means (several rollouts a prompt).
    PromptMeans,
}

/// Accuracy with its 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Prompts it averages over (sampled prompts with a rollout).
    pub prompts: u64,
    /// Rollouts it counts.
    pub rollouts: u64,
    /// The mean per-prompt share of passing rollouts.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
    /// How the interval was computed.
    pub method: Method,
}

impl Accuracy {
    /// Accuracy over prompts given as `(passing, rollouts)`; prompts without
    /// rollouts are left out. `None` when no prompt has one.
    pub fn of(prompts: impl IntoIterator<Item = (u64, u64)>) -> Option<Accuracy> {
        let (mut n, mut rollouts, mut single) = (0u64, 0u64, true);
        let mut mean = Welford::default();
        let mut passed = 0u64;
        for (pass, total) in prompts {
            if total == 0 {
                continue;
            }
            n += 1;
            rollouts += total;
            passed += pass;
            single &= total == 1;
            mean.add(pass as f64 / total as f64);
        }
        if n == 0 {
            return None;
        }
        let value = mean.mean;
        let (lo, hi, method) = if single {
            let (lo, hi) = wilson(passed, n);
            (lo, hi, Method::Wilson)
        } else if mean.m2 == 0.0 && (value == 0.0 || value == 1.0) {
            // Every prompt failed (or passed) every rollout: the normal
            // interval collapses to a point; Wilson's over the prompts, as
            // if each were one trial, says how little n prompts rule out.
            let (lo, hi) = wilson(if value == 1.0 { n } else { 0 }, n);
            (lo, hi, Method::Wilson)
        } else {
            let half = Z95 * mean.standard_error();
            (
                (value - half).max(0.0),
                (value + half).min(1.0),
                Method::PromptMeans,
            )
        };
        Some(Accuracy {
            prompts: n,
            rollouts,
            value,
            lo,
            hi,
            method,
        })
    }

    /// `0.168 (95% CI 0.137–0.201, 541 prompts × 1 rollout)`.
    pub fn describe(&self) -> String {
        let per = self.rollouts as f64 / self.prompts as f64;
        let per = if per.fract() == 0.0 {
            format!("{per:.0}")
        } else {
            format!("{per:.1}")
        };
        let noun = if per == "1" { "rollout" } else { "rollouts" };
        format!(
            "{:.3} (95% CI {:.3}–{:.3}, {} prompts × {per} {noun})",
            self.value, self.lo, self.hi, self.prompts
        )
    }
}

/// Wilson's 95% score interval for `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// The paired difference of a run against a baseline over their shared
/// prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// Prompts both runs sampled.
    pub shared: u64,
    /// Mean per-prompt accuracy of the run minus the baseline's.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
    /// Shared prompts where the run did better.
    pub better: u64,
    /// Shared prompts where it did worse.
    pub worse: u64,
}

impl Difference {
    /// From `(baseline, run)` per-prompt accuracies of the shared prompts;
    /// `None` when none is shared.
    pub fn paired(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<Difference> {
        let mut d = Welford::default();
        let (mut better, mut worse) = (0, 0);
        for (base, run) in pairs {
            d.add(run - base);
            if run > base {
                better += 1;
            } else if run < base {
                worse += 1;
            }
        }
        if d.n == 0 {
            return None;
        }
        let half = Z95 * d.standard_error();
        Some(Difference {
            shared: d.n,
            value: d.mean,
            lo: (d.mean - half).max(-1.0),
            hi: (d.mean + half).min(1.0),
            better,
            worse,
        })
    }

    /// Whether the interval leaves out zero.
    pub fn significant(&self) -> bool {
        self.lo > 0.0 || self.hi < 0.0
    }

    /// `+0.045 (95% CI +0.010 to +0.080) over 200 shared prompts: better on
    /// 15, worse on 6`, with whether the interval leaves out zero.
    pub fn describe(&self) -> String {
        let verdict = if self.significant() {
            "the interval leaves out 0"
        } else {
            "the interval includes 0: no difference shown"
        };
        format!(
            "{:+.3} (95% CI {:+.3} to {:+.3}) over {} shared prompts: better on {}, worse on {}; {verdict}",
            self.value, self.lo, self.hi, self.shared, self.better, self.worse
        )
    }
}

/// Mean and variance in one pass (Welford).
#[derive(Debug, Default)]
struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// The standard error of the mean (sample variance, n − 1); 0 for one
    /// value.
    fn standard_error(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        (self.m2 / (self.n - 1) as f64 / self.n as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 81 of 263 (Wilson 1927 as tabulated by Newcombe 1998, method 3):
        // 0.2553 to 0.3662.
        let (lo, hi) = wilson(81, 263);
        assert!(close(lo, 0.2553) && close(hi, 0.3662), "{lo} {hi}");
        // 0 of 10: 0 to 0.2775.
        let (lo, hi) = wilson(0, 10);
        assert!(close(lo, 0.0) && close(hi, 0.2775), "{lo} {hi}");
        // 15 of 148: 0.0624 to 0.1605.
        let (lo, hi) = wilson(15, 148);
        assert!(close(lo, 0.0624) && close(hi, 0.1605), "{lo} {hi}");
    }

    #[test]
    fn one_rollout_a_prompt_is_a_proportion_with_wilson() {
        let a = Accuracy::of([(1, 1), (0, 1), (0, 1), (1, 1), (0, 0)]).unwrap();
        assert_eq!((a.prompts, a.rollouts, a.method), (4, 4, Method::Wilson));
        assert!(close(a.value, 0.5));
        let (lo, hi) = wilson(2, 4);
        assert_eq!((a.lo, a.hi), (lo, hi));
    }

    #[test]
    fn several_rollouts_use_the_prompt_means() {
        // Means 1, 0.5, 0, 0.25: mean 0.4375, sample sd 0.4270, SE 0.2135.
        let a = Accuracy::of([(4, 4), (2, 4), (0, 4), (1, 4)]).unwrap();
        assert_eq!(a.method, Method::PromptMeans);
        assert!(close(a.value, 0.4375));
        let half = Z95 * 0.213_478_1;
        assert!(close(a.lo, 0.4375 - half) && close(a.hi, 0.4375 + half));
        assert_eq!(
            a.describe(),
            "0.438 (95% CI 0.019–0.856, 4 prompts × 4 rollouts)"
        );
        assert!(Accuracy::of([(0, 0)]).is_none());
        // All failed: not the point [0, 0] but Wilson's 0 of 3 prompts.
        let none = Accuracy::of([(0, 4), (0, 4), (0, 2)]).unwrap();
        assert_eq!(
            (none.method, none.lo, none.hi),
            (Method::Wilson, 0.0, wilson(0, 3).1)
        );
        assert!(none.hi > 0.5);
    }

    #[test]
    fn a_paired_difference_counts_wins_and_losses() {
        // d = +1, 0, 0, -1, +1: mean 0.2, sample sd 0.8367, SE 0.3742.
        let d = Difference::paired([(0.0, 1.0), (1.0, 1.0), (0.0, 0.0), (1.0, 0.0), (0.0, 1.0)])
            .unwrap();
        assert_eq!((d.shared, d.better, d.worse), (5, 2, 1));
        assert!(close(d.value, 0.2));
        assert!(close(d.hi - d.value, Z95 * 0.374_165_7));
        assert!(!d.significant());
        assert!(d.describe().contains("no difference shown"));
        let all_better = Difference::paired([(0.0, 1.0); 30]).unwrap();
        assert!(all_better.significant() && close(all_better.lo, 1.0));
        assert!(Difference::paired([]).is_none());
    }
}
