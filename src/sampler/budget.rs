//! Budgets: what a work dir has spent (its saved rows, every earlier run
//! counted) against `budget.max_requests`, `budget.max_completion_tokens`
//! and `budget.max_cost` (from `pricing`). A request is sent only when its
//! worst case (its prompt, `max_tokens` for each response asked), added to
//! what was spent and to the worst case of the requests in flight, stays
//! within every budget. A request that does not fit waits while others are
//! in flight: each settles at its real cost and frees the unused part of
//! its reservation. Only when nothing is in flight and the next request
//! still does not fit does the run stop (its own exit status), so a run
//! ends within one request's worst case of its cap.

use std::collections::HashSet;
use std::path::Path;

use crate::config::{BudgetConfig, PricingConfig};
use crate::store::StoreError;

/// Requests and tokens spent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// Requests answered.
    pub requests: u64,
    /// Their prompt tokens.
    pub prompt_tokens: u64,
    /// Their completion tokens.
    pub completion_tokens: u64,
}

impl Spent {
    /// The cost at `input` and `output` USD per million tokens.
    pub fn cost(&self, input: f64, output: f64) -> f64 {
        (self.prompt_tokens as f64 * input + self.completion_tokens as f64 * output) / 1e6
    }
}

/// The budget a request could pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Cap {
    /// Its config key, `budget.max_cost` say.
    pub key: &'static str,
    /// The key with its value and what the next request could use.
    pub detail: String,
}

/// `value` rounded up to two significant digits, as a config value (money
/// keeps cents below 1).
pub fn round_up(value: f64, money: bool) -> String {
    if value.is_nan() || value <= 0.0 {
        return if money { "1".into() } else { "10".into() };
    }
    let scale = 10f64.powi(value.log10().floor() as i32 - 1);
    let rounded = (value / scale).ceil() * scale;
    if money && rounded < 1.0 {
        format!("{:.2}", (rounded * 100.0).ceil() / 100.0)
    } else if money && rounded < 100.0 {
        let s = format!("{rounded:.1}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{}", rounded.round() as u64)
    }
}

/// What the saved rows of `root` spent: one request per distinct `(id,
/// step, created_at)` of rows without an error (a request's responses share
/// its time), its prompt tokens once, every response's completion tokens.
pub fn saved_spent(root: &Path, shards: &[u32]) -> Result<Spent, StoreError> {
    let mut spent = Spent::default();
    for &shard in shards {
        let mut seen: HashSet<(String, u32, i64)> = HashSet::new();
        crate::store::parts::for_each_spent(
            root,
            shard,
            |id, step, created_at, prompt, completion| {
                spent.completion_tokens += completion.unwrap_or(0);
                if seen.insert((id.to_string(), step, created_at)) {
                    spent.requests += 1;
                    spent.prompt_tokens += prompt.unwrap_or(0);
                }
            },
        )?;
    }
    Ok(spent)
}

/// The budgets of a run and what counts against them.
#[derive(Debug, Clone)]
pub struct Budget {
    limits: BudgetConfig,
    prices: Option<(f64, f64)>,
    max_tokens: u64,
    /// Spent before this run (sampling), and the judge's cost so far.
    earlier: Spent,
    judge_cost: f64,
    /// Spent by this run.
    now: Spent,
    /// Worst case of the requests in flight.
    in_flight: Spent,
    /// Worst cost (USD) of the other server's requests in flight (a judge
    /// asked while sampling, [`Budget::admit_cost`]).
    other_in_flight: f64,
}

impl Budget {
    /// The budget of a run, or `None` when no budget is set.
    pub fn new(
        limits: &BudgetConfig,
        pricing: &PricingConfig,
        max_tokens: u32,
        earlier: Spent,
        judge_cost: f64,
    ) -> Option<Self> {
        if limits.max_cost.is_none()
            && limits.max_completion_tokens.is_none()
            && limits.max_requests.is_none()
        {
            return None;
        }
        Some(Self {
            limits: limits.clone(),
            prices: pricing.input.zip(pricing.output),
            max_tokens: u64::from(max_tokens),
            earlier,
            judge_cost,
            now: Spent::default(),
            in_flight: Spent::default(),
            other_in_flight: 0.0,
        })
    }

    /// The budget of a judging run: `budget.max_cost` at the judge's
    /// `prices` (USD per million prompt and completion tokens), with
    /// `before` USD spent by the work dir already (sampling and earlier
    /// judging) and `max_tokens` completion tokens per answer at most.
    pub fn judging(max_cost: f64, prices: (f64, f64), max_tokens: u64, before: f64) -> Self {
        Self {
            limits: BudgetConfig {
                max_cost: Some(max_cost),
                ..BudgetConfig::default()
            },
            prices: Some(prices),
            max_tokens,
            earlier: Spent::default(),
            judge_cost: before,
            now: Spent::default(),
            in_flight: Spent::default(),
            other_in_flight: 0.0,
        }
    }

    /// `budget.max_cost`, when set.
    pub fn max_cost(&self) -> Option<f64> {
        self.limits.max_cost
    }

    /// USD spent against `budget.max_cost` (requests in flight left out),
    /// when prices are set.
    pub fn cost(&self) -> Option<f64> {
        let (input, output) = self.prices?;
        Some(self.total().cost(input, output) + self.judge_cost)
    }

    /// The most a request of `n` answers to a prompt of about
    /// `prompt_tokens` can cost, when prices are set.
    pub fn worst_cost(&self, prompt_tokens: u64, n: u64) -> Option<f64> {
        let (input, output) = self.prices?;
        Some(self.worst(prompt_tokens, n).cost(input, output))
    }

    fn total(&self) -> Spent {
        Spent {
            requests: self.earlier.requests + self.now.requests,
            prompt_tokens: self.earlier.prompt_tokens + self.now.prompt_tokens,
            completion_tokens: self.earlier.completion_tokens + self.now.completion_tokens,
        }
    }

    /// The worst case of a request of `n` responses to a prompt of about
    /// `prompt_tokens`.
    fn worst(&self, prompt_tokens: u64, n: u64) -> Spent {
        Spent {
            requests: 1,
            prompt_tokens,
            completion_tokens: self.max_tokens * n,
        }
    }

    /// Admits a request (reserving its worst case) or says which budget it
    /// could pass.
    pub fn admit(&mut self, prompt_tokens: u64, n: u64) -> Result<(), Cap> {
        let w = self.worst(prompt_tokens, n);
        let total = self.total();
        let after = Spent {
            requests: total.requests + self.in_flight.requests + w.requests,
            prompt_tokens: total.prompt_tokens + self.in_flight.prompt_tokens + w.prompt_tokens,
            completion_tokens: total.completion_tokens
                + self.in_flight.completion_tokens
                + w.completion_tokens,
        };
        if let Some(max) = self.limits.max_requests
            && after.requests > max
        {
            return Err(Cap {
                key: "budget.max_requests",
                detail: format!("budget.max_requests ({max})"),
            });
        }
        if let Some(max) = self.limits.max_completion_tokens
            && after.completion_tokens > max
        {
            return Err(Cap {
                key: "budget.max_completion_tokens",
                detail: format!(
                    "budget.max_completion_tokens ({max}; the next request could use {} more)",
                    w.completion_tokens
                ),
            });
        }
        if let (Some(max), Some((input, output))) = (self.limits.max_cost, self.prices)
            && after.cost(input, output) + self.judge_cost + self.other_in_flight > max
        {
            return Err(Cap {
                key: "budget.max_cost",
                detail: format!(
                    "budget.max_cost (${max}; the next request could cost ${:.4})",
                    w.cost(input, output)
                ),
            });
        }
        self.in_flight.requests += w.requests;
        self.in_flight.prompt_tokens += w.prompt_tokens;
        self.in_flight.completion_tokens += w.completion_tokens;
        Ok(())
    }

    /// A value of `key` that would let the run finish: what was spent
    /// before, plus this run's spending times `projection` (the prompts
    /// left over those finished), with a tenth to spare; twice the cap
    /// when there is nothing to project from.
    pub fn suggest(&self, key: &str, projection: Option<f64>) -> String {
        let estimate = |earlier: f64, now: f64| projection.map(|f| (earlier + now * f) * 1.1);
        let (limit, estimate, money) = match key {
            "budget.max_requests" => (
                self.limits.max_requests.map(|m| m as f64),
                estimate(self.earlier.requests as f64, self.now.requests as f64),
                false,
            ),
            "budget.max_completion_tokens" => (
                self.limits.max_completion_tokens.map(|m| m as f64),
                estimate(
                    self.earlier.completion_tokens as f64,
                    self.now.completion_tokens as f64,
                ),
                false,
            ),
            _ => {
                let (i, o) = self.prices.unwrap_or_default();
                (
                    self.limits.max_cost,
                    estimate(
                        self.earlier.cost(i, o) + self.judge_cost,
                        self.now.cost(i, o),
                    ),
                    true,
                )
            }
        };
        let limit = limit.unwrap_or(0.0);
        let value = match estimate {
            Some(e) if e > limit => e,
            _ => limit * 2.0,
        };
        round_up(value, money)
    }

    /// Admits a request to another server that costs at most `worst` USD
    /// (a judge asked while sampling: its prices are its own), against
    /// `budget.max_cost` only, with the sampling requests in flight and what
    /// was spent; reserves `worst` until [`Budget::settle_cost`].
    pub fn admit_cost(&mut self, worst: f64) -> Result<(), Cap> {
        if let Some(max) = self.limits.max_cost {
            let sampling = self.prices.map_or(0.0, |(input, output)| {
                let t = self.total();
                Spent {
                    requests: 0,
                    prompt_tokens: t.prompt_tokens + self.in_flight.prompt_tokens,
                    completion_tokens: t.completion_tokens + self.in_flight.completion_tokens,
                }
                .cost(input, output)
            });
            if sampling + self.judge_cost + self.other_in_flight + worst > max {
                return Err(Cap {
                    key: "budget.max_cost",
                    detail: format!(
                        "budget.max_cost (${max}; the next judge request could cost ${worst:.4})"
                    ),
                });
            }
        }
        self.other_in_flight += worst;
        Ok(())
    }

    /// Releases a reservation of [`Budget::admit_cost`] and counts the
    /// `spent` USD it really cost.
    pub fn settle_cost(&mut self, reserved: f64, spent: f64) {
        self.other_in_flight = (self.other_in_flight - reserved).max(0.0);
        self.judge_cost += spent;
    }

    /// Releases an admitted request's reservation and counts what it spent
    /// (`None`: it failed, nothing known spent).
    pub fn settle(&mut self, prompt_tokens: u64, n: u64, spent: Option<Spent>) {
        let w = self.worst(prompt_tokens, n);
        self.in_flight.requests = self.in_flight.requests.saturating_sub(w.requests);
        self.in_flight.prompt_tokens = self.in_flight.prompt_tokens.saturating_sub(w.prompt_tokens);
        self.in_flight.completion_tokens = self
            .in_flight
            .completion_tokens
            .saturating_sub(w.completion_tokens);
        if let Some(s) = spent {
            self.now.requests += s.requests;
            self.now.prompt_tokens += s.prompt_tokens;
            self.now.completion_tokens += s.completion_tokens;
        }
    }

    /// What was spent against each budget set, for the stop message.
    pub fn report(&self) -> String {
        let t = self.total();
        let mut parts = Vec::new();
        if let Some(max) = self.limits.max_requests {
            parts.push(format!("{} of {max} requests", t.requests));
        }
        if let Some(max) = self.limits.max_completion_tokens {
            parts.push(format!(
                "{} of {max} completion tokens",
                t.completion_tokens
            ));
        }
        if let Some(max) = self.limits.max_cost {
            // A judge priced alone makes the sampling side free.
            let (input, output) = self.prices.unwrap_or_default();
            let judge = if self.judge_cost > 0.0 {
                format!(" (judge ${:.4} of it)", self.judge_cost)
            } else {
                String::new()
            };
            parts.push(format!(
                "${:.4} of ${max}{judge}",
                t.cost(input, output) + self.judge_cost
            ));
        }
        format!(
            "spent {} ({} prompt + {} completion tokens over all runs of this work dir)",
            parts.join(", "),
            t.prompt_tokens,
            t.completion_tokens
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(cost: Option<f64>, tokens: Option<u64>, requests: Option<u64>) -> Budget {
        Budget::new(
            &BudgetConfig {
                max_cost: cost,
                max_completion_tokens: tokens,
                max_requests: requests,
            },
            &PricingConfig {
                input: Some(1.0),
                output: Some(10.0),
                judge_input: None,
                judge_output: None,
                batch_discount: 0.5,
            },
            100,
            Spent {
                requests: 5,
                prompt_tokens: 500,
                completion_tokens: 400,
            },
            0.0,
        )
        .unwrap()
    }

    #[test]
    fn requests_are_admitted_by_their_worst_case_with_those_in_flight() {
        let mut b = budget(None, Some(1000), None);
        // 400 spent; each request of n=2 could use 200 more.
        assert!(b.admit(50, 2).is_ok());
        assert!(b.admit(50, 2).is_ok());
        assert!(b.admit(50, 2).is_ok());
        let e = b.admit(50, 2).unwrap_err();
        assert_eq!(e.key, "budget.max_completion_tokens");
        assert!(
            e.detail.contains("budget.max_completion_tokens (1000"),
            "{e:?}"
        );
        // Answers of 50 tokens free their reservations: 450 spent + 400 in
        // flight + 200 is still too much, 500 + 200 + 200 is not.
        let answered = Some(Spent {
            requests: 1,
            prompt_tokens: 50,
            completion_tokens: 50,
        });
        b.settle(50, 2, answered);
        assert!(b.admit(50, 2).is_err());
        b.settle(50, 2, answered);
        assert!(b.admit(50, 2).is_ok());
        assert!(
            b.report().contains("500 of 1000 completion tokens"),
            "{}",
            b.report()
        );
    }

    #[test]
    fn cost_and_request_budgets() {
        // Spent: 500 in × $1/M + 400 out × $10/M = $0.0045; a request of
        // 100 in + 100 out costs at most $0.0011.
        let mut b = budget(Some(0.006), None, None);
        assert!(b.admit(100, 1).is_ok());
        let e = b.admit(100, 1).unwrap_err();
        assert!(e.detail.contains("budget.max_cost ($0.006"), "{e:?}");
        let mut b = budget(None, None, Some(6));
        assert!(b.admit(10, 1).is_ok());
        assert_eq!(
            b.admit(10, 1).unwrap_err().detail,
            "budget.max_requests (6)"
        );
        assert!(
            b.report().starts_with("spent 5 of 6 requests"),
            "{}",
            b.report()
        );
        assert!(
            Budget::new(
                &BudgetConfig::default(),
                &PricingConfig::default(),
                100,
                Spent::default(),
                0.0
            )
            .is_none()
        );
    }

    #[test]
    fn a_judge_asked_while_sampling_draws_on_the_same_cost_cap() {
        // $0.0045 spent sampling; judge requests of at most $0.0005 each.
        let mut b = budget(Some(0.006), None, None);
        assert!(b.admit_cost(0.0005).is_ok());
        assert!(b.admit_cost(0.0005).is_ok());
        assert!(b.admit_cost(0.0005).is_ok());
        let e = b.admit_cost(0.0005).unwrap_err();
        assert_eq!(e.key, "budget.max_cost");
        assert!(
            e.detail.contains("next judge request could cost $0.0005"),
            "{e:?}"
        );
        // A sampling request sees the judge's reservations too.
        assert!(b.admit(10, 1).is_err());
        // Answers settle at what they cost: room again.
        for _ in 0..3 {
            b.settle_cost(0.0005, 0.0001);
        }
        assert!(b.admit_cost(0.0005).is_ok());
        assert!(
            b.report().contains("(judge $0.0003 of it)"),
            "{}",
            b.report()
        );
    }

    #[test]
    fn suggestions_project_the_run_and_round_up() {
        assert_eq!(round_up(0.8352, true), "0.84");
        assert_eq!(round_up(5.82, true), "5.9");
        assert_eq!(round_up(123.4, true), "130");
        assert_eq!(round_up(41_234.0, false), "42000");
        assert_eq!(round_up(0.0, false), "10");
        let mut b = budget(None, None, Some(10));
        // 5 requests earlier, 4 now, a quarter of the prompts done: about
        // (5 + 16) × 1.1 = 23.1 requests for the whole run.
        for _ in 0..4 {
            b.admit(10, 1).unwrap();
            b.settle(
                10,
                1,
                Some(Spent {
                    requests: 1,
                    prompt_tokens: 10,
                    completion_tokens: 10,
                }),
            );
        }
        assert_eq!(b.suggest("budget.max_requests", Some(4.0)), "24");
        // Nothing to project from: twice the cap.
        assert_eq!(b.suggest("budget.max_requests", None), "20");
    }
}
