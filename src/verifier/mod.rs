//! Verifiers: pure functions that score a response against a gold answer.
//!
//! A verifier sees one [`Sample`] (final response text, gold answer, the
//! prompt's metadata JSON) and returns a [`Verdict`]. Answers are looked for
//! only after the thinking ([`split`]); a response whose thinking never
//! closed scores 0 with no prediction and is flagged `unclosed`.
//! [`verify_batch`] scores Arrow arrays across cores; [`udf`] exposes the
//! verifiers as SQL functions. New verifiers are one file plus one entry in
//! [`REGISTRY`] (name, description, builder, SQL functions).

pub mod code;
pub mod extract;
pub mod ifeval;
pub mod math;
pub mod mcq;
pub mod numeric;
pub mod split;
pub mod udf;

use std::sync::Arc;

use arrow::array::{Array, BooleanArray, Float64Array, StringArray};
use serde_json::{Map, Value};
use thiserror::Error;
use udf::{Output, SqlFunction};

/// One response to score.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The response text (may still contain its thinking).
    pub response: &'a str,
    /// The gold answer.
    pub gold: &'a str,
    /// The prompt's `metadata` JSON object, when known.
    pub metadata: Option<&'a str>,
}

/// The outcome of scoring one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Score, 1.0 for a correct answer under pass/fail verifiers.
    pub score: f64,
    /// What the verifier extracted as the answer.
    pub pred: Option<String>,
    /// Absolute error, for numeric verifiers.
    pub error: Option<f64>,
    /// The thinking never closed: no final answer (treated as truncated).
    pub unclosed: bool,
}

impl Verdict {
    /// The verdict for a response whose thinking never closed.
    pub fn unclosed() -> Self {
        Self {
            score: 0.0,
            pred: None,
            error: None,
            unclosed: true,
        }
    }
}

/// A verifier: pure, deterministic, safe to call from many threads.
pub trait Verifier: Send + Sync + std::fmt::Debug {
    /// Registry name, e.g. `mcq-rlvr`.
    fn name(&self) -> &'static str;
    /// Scores one response.
    fn verify(&self, sample: &Sample<'_>) -> Verdict;
    /// Whether it can score only against a gold answer (every rule
    /// verifier can); sampling refuses an input where no prompt has one.
    fn needs_gold(&self) -> bool {
        true
    }
    /// Whether it reads and checks each prompt's gold at prepare time
    /// ([`Verifier::read_gold`]); the others keep the answer as it is.
    fn reads_gold(&self) -> bool {
        false
    }
    /// The gold to store for a prompt at prepare time, from its answer or
    /// its metadata; an error (a gold this verifier cannot read) stops
    /// prepare with the prompt named. By default the answer as it is.
    fn read_gold(
        &self,
        answer: Option<&str>,
        _metadata: Option<&str>,
    ) -> Result<Option<String>, String> {
        Ok(answer.map(str::to_string))
    }
}

/// Errors building a verifier.
#[derive(Debug, Error)]
pub enum VerifierError {
    /// No verifier has this name.
    #[error("unknown verifier `{name}`; known verifiers: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: String,
    },
    /// A `verifier.options` entry is invalid.
    #[error("verifier.options.{key} ({verifier}): {message}")]
    Option {
        /// The verifier.
        verifier: &'static str,
        /// The option key.
        key: String,
        /// What is expected.
        message: String,
    },
}

/// Builds a verifier from its `verifier.options`.
pub type Builder = fn(&Map<String, Value>) -> Result<Arc<dyn Verifier>, VerifierError>;

/// A registered verifier: its name, what it does, and how to build it from
/// `verifier.options`.
pub struct Entry {
    /// Registry name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Builds the verifier from its options.
    pub build: Builder,
    /// Its functions in `rsr sql`.
    pub sql: &'static [udf::SqlFunction],
}

/// Every verifier rsr knows.
pub const REGISTRY: &[Entry] = &[
    Entry {
        name: "math-rlvr",
        description: "math: the final boxed / stated answer against the gold, by value, expression, interval, tuple, set or matrix",
        build: |options| Ok(Arc::new(math::MathRlvr::from_options(options)?)),
        sql: &[
            SqlFunction {
                name: "math_verify",
                output: Output::Score,
                arities: &[2],
            },
            SqlFunction {
                name: "extract_answer",
                output: Output::Pred,
                arities: &[1],
            },
        ],
    },
    Entry {
        name: "mcq-rlvr",
        description: "multiple choice: the final stated option letter(s) against the gold letter(s)",
        build: |options| Ok(Arc::new(mcq::Mcq::from_options(options)?)),
        sql: &[
            SqlFunction {
                name: "mcq_verify",
                output: Output::Score,
                arities: &[2, 3],
            },
            SqlFunction {
                name: "mcq_extract",
                output: Output::Pred,
                arities: &[1, 2],
            },
        ],
    },
    Entry {
        name: "numeric",
        description: "a number in <answer>…</answer> (or boxed, or the last number) within a tolerance of the gold",
        build: |options| Ok(Arc::new(numeric::Numeric::from_options(options)?)),
        sql: &[
            SqlFunction {
                name: "numeric_verify",
                output: Output::Score,
                arities: &[2],
            },
            SqlFunction {
                name: "numeric_error",
                output: Output::Error,
                arities: &[2],
            },
            SqlFunction {
                name: "numeric_extract",
                output: Output::Pred,
                arities: &[1],
            },
        ],
    },
    Entry {
        name: ifeval::NAME,
        description: "instruction following: Google's 25 IFEval instructions (ids and kwargs in the gold), strict or loose, all followed or the fraction",
        build: |options| Ok(Arc::new(ifeval::IfEval::from_options(options)?)),
        sql: &[
            SqlFunction {
                name: "ifeval_verify",
                output: Output::Score,
                arities: &[2],
            },
            SqlFunction {
                name: "ifeval_results",
                output: Output::Pred,
                arities: &[2],
            },
        ],
    },
];

/// Reads `verifier.options` into `T`, a `#[serde(deny_unknown_fields)]`
/// struct: an unknown (misspelled) or mistyped option is an error that names
/// its key and what is expected.
pub fn read_options<T: serde::de::DeserializeOwned>(
    verifier: &'static str,
    options: &Map<String, Value>,
) -> Result<T, VerifierError> {
    serde_path_to_error::deserialize(Value::Object(options.clone())).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // An unknown field is reported at the map, with its name in backticks.
        let key = match message.strip_prefix("unknown field `") {
            Some(rest) => rest.split('`').next().unwrap_or_default().to_string(),
            None => path,
        };
        VerifierError::Option {
            verifier,
            key,
            message,
        }
    })
}

/// Builds the verifier `name` with `options`.
pub fn build(name: &str, options: &Map<String, Value>) -> Result<Arc<dyn Verifier>, VerifierError> {
    match REGISTRY.iter().find(|e| e.name == name) {
        Some(entry) => (entry.build)(options),
        None => Err(VerifierError::Unknown {
            name: name.to_string(),
            known: REGISTRY
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Verdicts for a batch, as Arrow arrays.
#[derive(Debug, Clone)]
pub struct Verdicts {
    /// Scores; null where the response or the gold is null.
    pub score: Float64Array,
    /// Extracted answers.
    pub pred: StringArray,
    /// Absolute errors (numeric verifiers).
    pub error: Float64Array,
    /// Whether the thinking never closed.
    pub unclosed: BooleanArray,
}

/// Rows per parallel chunk.
const CHUNK: usize = 1024;

/// Scores whole arrays, in parallel across the available cores. Nulls in
/// `responses` or `gold` give null verdicts.
pub fn verify_batch(
    verifier: &dyn Verifier,
    responses: &StringArray,
    gold: &StringArray,
    metadata: Option<&StringArray>,
) -> Verdicts {
    let n = responses.len();
    let one = |i: usize| -> Option<Verdict> {
        if responses.is_null(i) || gold.is_null(i) {
            return None;
        }
        let metadata = metadata.filter(|m| !m.is_null(i)).map(|m| m.value(i));
        Some(verifier.verify(&Sample {
            response: responses.value(i),
            gold: gold.value(i),
            metadata,
        }))
    };
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let results: Vec<Option<Verdict>> = if n <= CHUNK || threads == 1 {
        (0..n).map(one).collect()
    } else {
        let chunks: Vec<std::ops::Range<usize>> = (0..n)
            .step_by(CHUNK)
            .map(|s| s..(s + CHUNK).min(n))
            .collect();
        let per_thread = chunks.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .chunks(per_thread)
                .map(|group| {
                    let group = group.to_vec();
                    scope.spawn(move || {
                        group
                            .into_iter()
                            .flat_map(|r| r.map(one))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("verifiers do not panic"))
                .collect()
        })
    };
    Verdicts {
        score: results
            .iter()
            .map(|v| v.as_ref().map(|v| v.score))
            .collect(),
        pred: results
            .iter()
            .map(|v| v.as_ref().and_then(|v| v.pred.as_deref()))
            .collect(),
        error: results
            .iter()
            .map(|v| v.as_ref().and_then(|v| v.error))
            .collect(),
        unclosed: results
            .iter()
            .map(|v| v.as_ref().map(|v| v.unclosed))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn options_name_the_key_and_what_is_expected() {
        let err = |name: &str, json: &str| {
            let options: Map<String, Value> = serde_json::from_str(json).unwrap();
            build(name, &options).unwrap_err().to_string()
        };
        let e = err("math-rlvr", r#"{"tolerence": 0.1}"#);
        assert!(e.contains("verifier.options.tolerence"), "{e}");
        assert!(
            e.contains("unknown field") && e.contains("`tolerance`"),
            "{e}"
        );
        let e = err("math-rlvr", r#"{"tolerance": "small"}"#);
        assert!(
            e.contains("verifier.options.tolerance") && e.contains("f64"),
            "{e}"
        );
        let e = err("math-rlvr", r#"{"fallback": "nothing"}"#);
        assert!(e.contains("`last_number`") && e.contains("`none`"), "{e}");
        let e = err("numeric", r#"{"scale": 0}"#);
        assert!(
            e.contains("verifier.options.scale") && e.contains("> 0"),
            "{e}"
        );
        let e = err("mcq-rlvr", r#"{"letters": 4}"#);
        assert!(e.contains("verifier.options.letters"), "{e}");
        let ok: Map<String, Value> =
            serde_json::from_str(r#"{"tolerance": 0.01, "percent": true, "fallback": "none"}"#)
                .unwrap();
        assert!(build("math-rlvr", &ok).is_ok());
    }

    use super::*;

    #[test]
    fn registry_builds_by_name_and_lists_names_on_error() {
        assert_eq!(build("mcq-rlvr", &Map::new()).unwrap().name(), "mcq-rlvr");
        let err = build("nope", &Map::new()).unwrap_err().to_string();
        assert!(
            err.contains("known verifiers: math-rlvr, mcq-rlvr, numeric, ifeval"),
            "{err}"
        );
        let mut opts = Map::new();
        opts.insert("x".into(), Value::Bool(true));
        assert!(build("mcq-rlvr", &opts).is_err());
    }

    #[test]
    fn arbitrary_and_pathological_inputs_never_panic() {
        let verifiers: Vec<_> = REGISTRY
            .iter()
            .map(|e| (e.build)(&Map::new()).unwrap())
            .collect();
        let pieces = [
            "\\boxed{",
            "}",
            "{",
            "\\frac",
            "<think>",
            "</think>",
            "<|channel|>final<|message|>",
            "answer is",
            "Answer:",
            "####",
            "(",
            ")",
            "[",
            ",",
            "\\{",
            "\\}",
            "x",
            "2",
            ".",
            "-",
            "^",
            "é",
            "答案是",
            "Ｂ",
            "\\begin{pmatrix}",
            "&",
            "\\\\",
            "\\cup",
            "%",
            " ",
        ];
        let mut seed: u64 = 7;
        for _ in 0..5_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 59) as usize + 1;
            let text: String = (0..len)
                .map(|i| pieces[((seed >> (i * 2 % 60)) as usize + i) % pieces.len()])
                .collect();
            for v in &verifiers {
                let verdict = v.verify(&Sample {
                    response: &text,
                    gold: &text,
                    metadata: None,
                });
                assert!(verdict.score.is_finite());
            }
        }
        // Large adversarial inputs: many unclosed boxes, deep nesting, long lines.
        let inputs = [
            "\\boxed{".repeat(20_000),
            format!("\\boxed{{{}1{}}}", "(".repeat(5_000), ")".repeat(5_000)),
            format!("\\boxed{{{}}}", "\\{1,".repeat(5_000)),
            "the answer is ".repeat(10_000),
            "9".repeat(100_000),
        ];
        for text in &inputs {
            for v in &verifiers {
                let verdict = v.verify(&Sample {
                    response: text,
                    gold: "1",
                    metadata: None,
                });
                assert!(verdict.score == 0.0 || verdict.score == 1.0);
            }
        }
    }

    #[test]
    fn batches_keep_order_and_nulls_across_threads() {
        let n = 5000;
        let responses: StringArray = (0..n)
            .map(|i| {
                (i % 7 != 0)
                    .then(|| format!("The answer is {}", if i % 2 == 0 { "A" } else { "B" }))
            })
            .collect();
        let gold: StringArray = (0..n).map(|_| Some("A")).collect();
        let v = build("mcq-rlvr", &Map::new()).unwrap();
        let out = verify_batch(v.as_ref(), &responses, &gold, None);
        assert_eq!(out.score.len(), n);
        for i in 0..n {
            if i % 7 == 0 {
                assert!(out.score.is_null(i));
            } else {
                assert_eq!(
                    out.score.value(i),
                    if i % 2 == 0 { 1.0 } else { 0.0 },
                    "row {i}"
                );
            }
        }
    }
}
