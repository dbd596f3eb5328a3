//! `numeric`: regression targets (for example image-quality scores).
//!
//! The prediction is the number inside the last `<answer>…</answer>`, else
//! the last `\boxed{…}`, else the last number in the final part. With
//! `tolerance` t the score is 1 when `|pred − gold| ≤ t`, else 0; with
//! `continuous: true` it is `max(0, 1 − |pred − gold| / scale)`. The absolute
//! error is returned in every case.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::extract;
use super::split::split;
use super::{Sample, Verdict, Verifier, VerifierError};

/// The numeric verifier and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Numeric {
    /// Largest absolute error that still scores 1.
    pub tolerance: f64,
    /// Score `1 − error / scale` (floored at 0) instead of pass/fail.
    pub continuous: bool,
    /// Error at which a continuous score reaches 0.
    pub scale: f64,
}

impl Default for Numeric {
    fn default() -> Self {
        Self {
            tolerance: 0.0,
            continuous: false,
            scale: 1.0,
        }
    }
}

/// `verifier.options` of `numeric`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    tolerance: Option<f64>,
    continuous: Option<bool>,
    scale: Option<f64>,
}

impl Numeric {
    /// Builds from `verifier.options` (`tolerance`, `continuous`, `scale`).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, VerifierError> {
        let o: Options = super::read_options("numeric", options)?;
        let bad = |key: &str, expected: &str, got: f64| VerifierError::Option {
            verifier: "numeric",
            key: key.into(),
            message: format!("expected {expected}, got {got}"),
        };
        let mut v = Self::default();
        if let Some(t) = o.tolerance {
            if t < 0.0 || !t.is_finite() {
                return Err(bad("tolerance", "a number ≥ 0", t));
            }
            v.tolerance = t;
        }
        if let Some(s) = o.scale {
            if s <= 0.0 || !s.is_finite() {
                return Err(bad("scale", "a number > 0", s));
            }
            v.scale = s;
        }
        v.continuous = o.continuous.unwrap_or(v.continuous);
        Ok(v)
    }
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+")
        .expect("valid regex")
});

/// Parses the last number in `text` (`1,234.5`, `-3e-2`, `−2`).
pub fn last_number(text: &str) -> Option<f64> {
    let m = NUMBER.find_iter(text).last()?;
    m.as_str()
        .replace(',', "")
        .replace('−', "-")
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// The number a response states, from its final part.
pub fn extract_number(final_part: &str) -> Option<f64> {
    if let Some(inner) = extract::last_tag(final_part, "answer") {
        return last_number(inner);
    }
    if let Some(inner) = extract::last_boxed(final_part) {
        return last_number(inner);
    }
    last_number(final_part)
}

impl Verifier for Numeric {
    fn name(&self) -> &'static str {
        "numeric"
    }

    fn verify(&self, sample: &Sample<'_>) -> Verdict {
        let Some(final_part) = split(sample.response).final_part() else {
            return Verdict::unclosed();
        };
        let pred = extract_number(final_part);
        let gold = last_number(sample.gold);
        let error = match (pred, gold) {
            (Some(p), Some(g)) => Some((p - g).abs()),
            _ => None,
        };
        let score = match error {
            None => 0.0,
            Some(e) if self.continuous => (1.0 - e / self.scale).max(0.0),
            Some(e) if e <= self.tolerance + 1e-12 => 1.0,
            Some(_) => 0.0,
        };
        Verdict {
            score,
            pred: pred.map(|p| p.to_string()),
            error,
            unclosed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(options: Value) -> Numeric {
        Numeric::from_options(options.as_object().unwrap()).unwrap()
    }

    fn verdict(n: &Numeric, response: &str, gold: &str) -> Verdict {
        n.verify(&Sample {
            response,
            gold,
            metadata: None,
        })
    }

    #[test]
    fn extraction_order() {
        assert_eq!(extract_number("<answer>3.5</answer> or maybe 4"), Some(3.5));
        assert_eq!(extract_number(r"I'd say \boxed{4.25} out of 5"), Some(4.25));
        assert_eq!(extract_number("between 2 and 3, so 2.7"), Some(2.7));
        assert_eq!(extract_number("a total of 1,234.5 points"), Some(1234.5));
        assert_eq!(extract_number("−2"), Some(-2.0));
        assert_eq!(extract_number("1e-3"), Some(0.001));
        assert_eq!(extract_number("no number"), None);
    }

    #[test]
    fn tolerance_and_error() {
        let n = v(json!({"tolerance": 0.5}));
        let r = verdict(&n, "<think>maybe 2</think><answer>3.4</answer>", "3.0");
        assert_eq!(r.score, 1.0);
        assert!((r.error.unwrap() - 0.4).abs() < 1e-9);
        let r = verdict(&n, "<answer>3.6</answer>", "3.0");
        assert_eq!(r.score, 0.0);
        assert_eq!(r.pred.as_deref(), Some("3.6"));
        let exact = Numeric::default();
        assert_eq!(verdict(&exact, "<answer>3</answer>", "3.0").score, 1.0);
    }

    #[test]
    fn continuous_scores() {
        let n = v(json!({"continuous": true, "scale": 2.0}));
        assert!((verdict(&n, "<answer>4</answer>", "3").score - 0.5).abs() < 1e-9);
        assert_eq!(verdict(&n, "<answer>9</answer>", "3").score, 0.0);
    }

    #[test]
    fn bad_options_name_the_key() {
        let err = Numeric::from_options(json!({"tolerence": 1}).as_object().unwrap()).unwrap_err();
        assert!(err.to_string().contains("tolerence"), "{err}");
        let err = Numeric::from_options(json!({"tolerance": -1}).as_object().unwrap()).unwrap_err();
        assert!(err.to_string().contains("≥ 0"), "{err}");
    }

    #[test]
    fn unclosed_thinking_scores_zero_with_no_prediction() {
        let r = verdict(&Numeric::default(), "<think>it is 3", "3");
        assert!(r.unclosed);
        assert_eq!((r.score, r.pred, r.error), (0.0, None, None));
    }
}
