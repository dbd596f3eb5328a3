//! `ifeval`: instruction following checked the way IFEval checks it.
//!
//! A prompt's gold lists instructions (Google's 25 ids with their kwargs,
//! [`gold`]); each is checked on the final part of the response (the
//! thinking removed) with the reference checker's rules ([`checks`]).
//! Strict checks the response as it is; loose passes an instruction when
//! any of eight variants passes (the response, without its first line,
//! last line or both, each also with every `*` removed), as Google
//! defines it.
//!
//! The verdict's `pred` keeps every instruction's outcome, in gold order:
//! `id=followed` (strict, hence loose too), `id=loose` (loose only) or
//! `id=failed`, separated by spaces; `sql/views/instructions.sql` reads it
//! as one row per instruction. The score is 1 when every instruction is
//! followed (strict by default, `mode: loose`), or with `partial: true` the
//! fraction followed (open-instruct's reward).

pub mod checks;
pub mod generate;
pub mod gold;
pub mod langdetect;
pub mod punkt;
pub mod pyjson;
pub mod text;
pub mod words;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::split::split;
use super::{Sample, Verdict, Verifier, VerifierError};
use checks::{Instruction, checkable};

/// Registry name.
pub const NAME: &str = "ifeval";

/// Strict or loose checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The response as it is.
    #[default]
    Strict,
    /// Any of the eight variants.
    Loose,
}

/// `verifier.options` of `ifeval`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    mode: Option<Mode>,
    partial: Option<bool>,
}

/// The instruction-following verifier.
#[derive(Debug, Default)]
pub struct IfEval {
    mode: Mode,
    partial: bool,
    /// Parsed golds by their text.
    golds: Mutex<HashMap<String, Arc<gold::Gold>>>,
}

/// One instruction's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Followed by the response as it is.
    pub strict: bool,
    /// Followed by at least one of the loose variants.
    pub loose: bool,
}

impl IfEval {
    /// Builds from `verifier.options`: `mode` (`strict`, `loose`) and
    /// `partial`.
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, VerifierError> {
        let o: Options = super::read_options(NAME, options)?;
        Ok(Self {
            mode: o.mode.unwrap_or_default(),
            partial: o.partial.unwrap_or(false),
            golds: Mutex::default(),
        })
    }
}

/// The loose variants after the response itself: without `*`, then without
/// the first line, the last line or both (stripped), each also without `*`.
pub fn loose_variants(response: &str) -> Vec<String> {
    let lines: Vec<&str> = response.split('\n').collect();
    let n = lines.len();
    let join = |from: usize, to: usize| {
        if from >= to {
            String::new()
        } else {
            text::strip(&lines[from..to].join("\n")).to_string()
        }
    };
    let cut = [join(1, n), join(0, n - 1), join(1, n - 1)];
    let mut out = vec![response.replace('*', "")];
    out.extend(cut.iter().cloned());
    out.extend(cut.iter().map(|v| v.replace('*', "")));
    out
}

/// Every instruction's outcome on `response` (the final part).
pub fn evaluate(checks: &[Instruction], response: &str) -> Vec<Outcome> {
    let mut variants: Option<Vec<String>> = None;
    checks
        .iter()
        .map(|check| {
            let strict = checkable(response) && check.follows(response);
            let loose = strict
                || variants
                    .get_or_insert_with(|| loose_variants(response))
                    .iter()
                    .any(|v| checkable(v) && check.follows(v));
            Outcome { strict, loose }
        })
        .collect()
}

/// The `pred` text of a verdict: `id=followed|loose|failed` per instruction.
pub fn encode(ids: &[String], outcomes: &[Outcome]) -> String {
    ids.iter()
        .zip(outcomes)
        .map(|(id, o)| {
            let word = match (o.strict, o.loose) {
                (true, _) => "followed",
                (false, true) => "loose",
                (false, false) => "failed",
            };
            format!("{id}={word}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl IfEval {
    /// The gold of a sample, parsed once per distinct text (its patterns
    /// compiled once): a prompt's rollouts, and a run's prompts in every
    /// batch, are checked against one parse.
    fn gold(&self, answer: &str, metadata: Option<&str>) -> Result<Arc<gold::Gold>, String> {
        const MAX: usize = 4096;
        if answer.trim().is_empty() {
            return gold::read(None, metadata).map(Arc::new);
        }
        let cache = || {
            self.golds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(g) = cache().get(answer) {
            return Ok(g.clone());
        }
        let g = Arc::new(gold::read(Some(answer), None)?);
        let mut c = cache();
        if c.len() >= MAX {
            c.clear();
        }
        c.insert(answer.to_string(), g.clone());
        Ok(g)
    }
}

impl Verifier for IfEval {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, sample: &Sample<'_>) -> Verdict {
        let gold = match self.gold(sample.gold, sample.metadata) {
            Ok(g) => g,
            Err(e) => {
                return Verdict {
                    score: 0.0,
                    pred: Some(format!("invalid gold: {e}")),
                    error: None,
                    unclosed: false,
                };
            }
        };
        let Some(response) = split(sample.response).final_part() else {
            // No final part: every instruction failed, kept per instruction
            // so that IFEval's numbers count the response.
            let failed = vec![
                Outcome {
                    strict: false,
                    loose: false
                };
                gold.ids.len()
            ];
            return Verdict {
                pred: Some(encode(&gold.ids, &failed)),
                ..Verdict::unclosed()
            };
        };
        let outcomes = evaluate(&gold.checks, response);
        let followed = outcomes
            .iter()
            .filter(|o| match self.mode {
                Mode::Strict => o.strict,
                Mode::Loose => o.loose,
            })
            .count();
        let score = if self.partial {
            followed as f64 / outcomes.len() as f64
        } else if followed == outcomes.len() {
            1.0
        } else {
            0.0
        };
        Verdict {
            score,
            pred: Some(encode(&gold.ids, &outcomes)),
            error: None,
            unclosed: false,
        }
    }

    fn reads_gold(&self) -> bool {
        true
    }

    /// Google's rows keep the gold beside the prompt (`metadata`): it is
    /// read from there, checked, and stored in one shape.
    fn read_gold(
        &self,
        answer: Option<&str>,
        metadata: Option<&str>,
    ) -> Result<Option<String>, String> {
        gold::read(answer, metadata).map(|g| Some(g.canonical()))
    }
}

#[cfg(test)]
mod tests;
