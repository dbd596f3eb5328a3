//! `math-rlvr`: math answers checked for equivalence, not string equality.
//!
//! The answer is extracted from the final part of the response
//! ([`extract`]), normalized ([`normalize`]) and compared with the gold by
//! structure ([`answer`]): numbers within a relative tolerance, expressions
//! by evaluation ([`expr`]), tuples and intervals in order with their
//! brackets, sets and lists of roots in any order, matrices cell by cell,
//! text after normalization.

pub mod answer;
pub mod expr;
pub mod extract;
pub mod normalize;

use serde_json::{Map, Value};

use super::split::split;
use super::{Sample, Verdict, Verifier, VerifierError};

pub use extract::Fallback;

/// The math verifier and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct MathRlvr {
    /// How answers are compared.
    pub compare: answer::Compare,
    /// What to use when no answer is stated.
    pub fallback: Fallback,
    /// The keys of a JSON answer object.
    pub json_keys: Vec<String>,
}

impl Default for MathRlvr {
    fn default() -> Self {
        Self {
            compare: answer::Compare::default(),
            fallback: Fallback::LastNumber,
            json_keys: crate::verifier::extract::default_json_keys(),
        }
    }
}

/// `verifier.options` of `math-rlvr`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    tolerance: Option<f64>,
    percent: Option<bool>,
    fallback: Option<Fallback>,
    json_keys: Option<Vec<String>>,
}

impl MathRlvr {
    /// Builds from `verifier.options`: `tolerance` (relative, default 1e-6),
    /// `percent` (also accept 50% = 0.5, default false), `fallback`
    /// (`last_number` or `none`), `json_keys` (the keys of a JSON answer
    /// object, default `answer`, `final_answer`, `choice`, `option`,
    /// `correct_answer`).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, VerifierError> {
        let o: Options = super::read_options("math-rlvr", options)?;
        let mut v = Self::default();
        if let Some(t) = o.tolerance {
            if !(0.0..1.0).contains(&t) {
                return Err(VerifierError::Option {
                    verifier: "math-rlvr",
                    key: "tolerance".into(),
                    message: format!("expected a relative tolerance in [0, 1), got {t}"),
                });
            }
            v.compare.rel_tol = t;
        }
        v.compare.percent = o.percent.unwrap_or(v.compare.percent);
        v.fallback = o.fallback.unwrap_or(v.fallback);
        if let Some(keys) = o.json_keys {
            if keys.is_empty() {
                return Err(VerifierError::Option {
                    verifier: "math-rlvr",
                    key: "json_keys".into(),
                    message: "expected at least one key".into(),
                });
            }
            v.json_keys = keys;
        }
        Ok(v)
    }
}

impl Verifier for MathRlvr {
    fn name(&self) -> &'static str {
        "math-rlvr"
    }

    fn verify(&self, sample: &Sample<'_>) -> Verdict {
        let Some(final_part) = split(sample.response).final_part() else {
            return Verdict::unclosed();
        };
        let pred = extract::extract_answer(final_part, self.fallback, &self.json_keys);
        let score = match &pred {
            Some(p) if answer::equal(p, sample.gold, &self.compare) => 1.0,
            _ => 0.0,
        };
        Verdict {
            score,
            pred,
            error: None,
            unclosed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(response: &str, gold: &str) -> f64 {
        MathRlvr::default()
            .verify(&Sample {
                response,
                gold,
                metadata: None,
            })
            .score
    }

    #[test]
    fn reasoning_model_responses() {
        let r = "<think>Maybe the answer is \\boxed{17}? Let me recheck: 16 - 3 - 4 = 9, 9 * 2 = 18.</think>\n\nShe makes $9 \\times 2 = 18$ dollars.\n\n\\boxed{18}";
        assert_eq!(score(r, "18"), 1.0);
        assert_eq!(score(r, "17"), 0.0);
        let r = "<think>\\boxed{18}";
        assert_eq!(score(r, "18"), 0.0);
        assert!(
            MathRlvr::default()
                .verify(&Sample {
                    response: r,
                    gold: "18",
                    metadata: None
                })
                .unclosed
        );
    }

    #[test]
    fn math500_shapes() {
        assert_eq!(
            score(
                r"\boxed{\left( 3, \frac{\pi}{2} \right)}",
                r"\left( 3, \frac{\pi}{2} \right)"
            ),
            1.0
        );
        assert_eq!(
            score(r"\boxed{(3, \pi/2)}", r"\left( 3, \frac{\pi}{2} \right)"),
            1.0
        );
        assert_eq!(score(r"\boxed{\dfrac{14}{3}}", r"\frac{14}{3}"), 1.0);
        assert_eq!(score(r"\boxed{p - q}", "p - q"), 1.0);
        assert_eq!(score(r"\boxed{-q + p}", "p - q"), 1.0);
        assert_eq!(score(r"\boxed{q - p}", "p - q"), 0.0);
        assert_eq!(
            score(r"The final answer is $\text{Evelyn}$.", r"\text{Evelyn}"),
            1.0
        );
    }

    #[test]
    fn options_are_checked() {
        let mut o = Map::new();
        o.insert("fallback".into(), Value::String("nothing".into()));
        let err = MathRlvr::from_options(&o).unwrap_err().to_string();
        assert!(err.contains("verifier.options.fallback"), "{err}");
        let mut o = Map::new();
        o.insert("percent".into(), Value::Bool(true));
        let v = MathRlvr::from_options(&o).unwrap();
        let s = v.verify(&Sample {
            response: r"\boxed{0.5}",
            gold: r"50\%",
            metadata: None,
        });
        assert_eq!(s.score, 1.0);
    }
}
