//! Majority-vote labels for prompts without gold answers
//! (`verifier.type=majority`, written by `rsr verify` to
//! `scores/<label>/`): the final answers of a prompt's valid rollouts,
//! extracted by the math or multiple-choice extractor, are grouped by the
//! same equivalence rules the verifier scores with (`1/2` and `0.5` are one
//! answer), the largest group's answer becomes the prompt's pseudo-label
//! with its vote share, and each rollout scores 1 when it agrees. A prompt
//! whose share is under `min_share`, or whose two largest groups tie, is
//! left unlabelled (no scores). Streamed shard by shard.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, SchemaRef};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::scoring::rescore::RescoreError;
use crate::sql::columns::{bools, u32s, utf8};
use crate::store::parquet::ParquetFile;
use crate::store::rollout::{self, Validity};
use crate::store::{RunState, WorkDir};
use crate::verifier::{self, Sample, Verifier, VerifierError};

/// The verifier name.
pub const NAME: &str = "majority";

/// Which extractor reads the answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Extractor {
    /// `math-rlvr`'s extraction and equivalence.
    Math,
    /// `mcq-rlvr`'s.
    Mcq,
}

/// `verifier.options` of `majority`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The extractor (`math` or `mcq`).
    #[serde(default = "default_extractor")]
    pub extractor: Extractor,
    /// A prompt is labelled when its largest group holds at least this
    /// share of its valid rollouts.
    #[serde(default = "default_min_share")]
    pub min_share: f64,
}

fn default_extractor() -> Extractor {
    Extractor::Math
}
fn default_min_share() -> f64 {
    0.5
}

impl Options {
    /// Reads and checks `verifier.options`.
    pub fn read(options: &Map<String, Value>) -> Result<Self, VerifierError> {
        let o: Options = verifier::read_options(NAME, options)?;
        if !(o.min_share > 0.0 && o.min_share <= 1.0) {
            return Err(VerifierError::Option {
                verifier: NAME,
                key: "min_share".into(),
                message: format!("{} is outside (0, 1]", o.min_share),
            });
        }
        Ok(o)
    }

    fn verifier(&self) -> Arc<dyn Verifier> {
        rules(self.extractor)
    }
}

/// The rule verifier whose extraction and equivalence `extractor` uses,
/// built once per process (maj@k asks for it once per prompt).
fn rules(extractor: Extractor) -> Arc<dyn Verifier> {
    static MATH: std::sync::OnceLock<Arc<dyn Verifier>> = std::sync::OnceLock::new();
    static MCQ: std::sync::OnceLock<Arc<dyn Verifier>> = std::sync::OnceLock::new();
    let (cell, name) = match extractor {
        Extractor::Math => (&MATH, "math-rlvr"),
        Extractor::Mcq => (&MCQ, "mcq-rlvr"),
    };
    Arc::clone(cell.get_or_init(|| verifier::build(name, &Map::new()).expect("defaults build")))
}

/// A prompt's vote: the pseudo-label and its share, or none.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    /// The majority answer, when the prompt is labelled.
    pub label: Option<String>,
    /// The largest group's share of the valid rollouts.
    pub share: f64,
    /// Per rollout: its answer's group agrees with the label.
    pub agrees: Vec<bool>,
}

/// Whether answer `a` equals answer `b` by `v`'s rules.
fn same(v: &dyn Verifier, extractor: Extractor, a: &str, b: &str) -> bool {
    if a.trim() == b.trim() {
        return true;
    }
    let response = match extractor {
        Extractor::Math => format!("\\boxed{{{a}}}"),
        Extractor::Mcq => format!("Answer: {a}"),
    };
    v.verify(&Sample {
        response: &response,
        gold: b,
        metadata: None,
    })
    .score
        >= rollout::PASS_SCORE
}

/// Groups of equal answers: each answer's group (`None`: no answer) and
/// each group's first answer with its size.
fn groups(
    v: &dyn Verifier,
    extractor: Extractor,
    answers: &[Option<String>],
) -> (Vec<Option<usize>>, Vec<(String, usize)>) {
    let mut groups: Vec<(String, usize)> = Vec::new();
    let mut group_of: Vec<Option<usize>> = Vec::with_capacity(answers.len());
    for a in answers {
        let g = a.as_deref().map(|a| {
            match groups
                .iter()
                .position(|(face, _)| same(v, extractor, a, face))
            {
                Some(i) => {
                    groups[i].1 += 1;
                    i
                }
                None => {
                    groups.push((a.to_string(), 1));
                    groups.len() - 1
                }
            }
        });
        group_of.push(g);
    }
    (group_of, groups)
}

/// Votes over the answers of one prompt's valid rollouts (`None`: no
/// answer found).
pub fn vote(v: &dyn Verifier, o: &Options, answers: &[Option<String>]) -> Vote {
    let (group_of, groups) = groups(v, o.extractor, answers);
    let mut sizes: Vec<(usize, usize)> = groups.iter().enumerate().map(|(i, g)| (g.1, i)).collect();
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let total = answers.len().max(1);
    let (top, winner) = sizes.first().copied().unwrap_or((0, usize::MAX));
    let tie = sizes.get(1).is_some_and(|s| s.0 == top);
    let share = top as f64 / total as f64;
    let labelled = top > 0 && !tie && share >= o.min_share;
    Vote {
        label: labelled.then(|| groups[winner].0.clone()),
        share,
        agrees: group_of
            .iter()
            .map(|g| labelled && *g == Some(winner))
            .collect(),
    }
}

/// The verifier whose answers `extractor` reads: `math-rlvr` or `mcq-rlvr`
/// (`None` for others, whose answers cannot be voted on).
pub fn extractor_of(verifier: &str) -> Option<Extractor> {
    match verifier {
        "math-rlvr" => Some(Extractor::Math),
        "mcq-rlvr" => Some(Extractor::Mcq),
        _ => None,
    }
}

/// maj@k of one prompt for each `k` (`None` where it has fewer than `k`
/// valid rollouts): whether the most common answer among its first `k`
/// valid rollouts is right, `passes[i]` telling whether rollout `i` is.
/// Tied answers share the credit (two tied, one right: 0.5); no answer at
/// all scores 0. `answers` and `passes` are in rollout order.
pub fn maj_at(
    extractor: Extractor,
    answers: &[Option<String>],
    passes: &[bool],
    ks: &[u64],
) -> Vec<Option<f64>> {
    let v = rules(extractor);
    let (group_of, groups) = groups(v.as_ref(), extractor, answers);
    let right: Vec<bool> = (0..groups.len())
        .map(|g| {
            group_of
                .iter()
                .zip(passes)
                .any(|(of, pass)| *of == Some(g) && *pass)
        })
        .collect();
    ks.iter()
        .map(|&k| {
            let k = k as usize;
            if answers.len() < k {
                return None;
            }
            let mut counts = vec![0usize; groups.len()];
            for g in group_of[..k].iter().flatten() {
                counts[*g] += 1;
            }
            let top = counts.iter().copied().max().unwrap_or(0);
            if top == 0 {
                return Some(0.0);
            }
            let tied: Vec<usize> = (0..counts.len()).filter(|&g| counts[g] == top).collect();
            let won = tied.iter().filter(|&&g| right[g]).count();
            Some(won as f64 / tied.len() as f64)
        })
        .collect()
}

/// One saved rollout's vote, with its prompt's gold.
struct Ballot {
    id: String,
    rollout_idx: u32,
    valid: bool,
    pred: Option<String>,
    gold: Option<String>,
}

/// What a majority labelling did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MajorityReport {
    /// Prompts with valid rollouts.
    pub prompts: u64,
    /// Of which labelled.
    pub labelled: u64,
    /// Labelled prompts with a gold answer, and of those, the label equal
    /// to the gold.
    pub with_gold: u64,
    /// Labels equal to the gold.
    pub label_is_gold: u64,
    /// Rollouts scored (agreeing or not).
    pub scored: u64,
    /// Scored rollouts that agree with their label.
    pub agree: u64,
}

fn schema() -> SchemaRef {
    rollout::score_schema_with([
        Field::new("outcome", DataType::Utf8, true),
        Field::new("majority_label", DataType::Utf8, true),
        Field::new("vote_share", DataType::Float64, true),
    ])
}

/// Labels every prompt of `wd` by majority vote and writes the scores.
pub async fn label(wd: &WorkDir, config: &Config) -> Result<MajorityReport, RescoreError> {
    let vc = &config.verifier;
    let options = Options::read(&vc.options)?;
    let v = options.verifier();
    let label = vc.label().to_string();
    let validity = Validity {
        drop_truncated: config.sampler.drop_truncated,
    };
    let state = RunState::load(&wd.state_path())?;
    let ctx = crate::sql::session(wd).await?;
    let mut report = MajorityReport::default();
    for shard in &state.shards {
        let rows = ballots(&ctx, v.as_ref(), shard.shard, validity).await?;
        if rows.is_empty() {
            continue;
        }
        let verdicts = count_votes(v.as_ref(), &options, &rows, &mut report);
        write_shard(wd, &label, shard.shard, &rows, verdicts)?;
    }
    let record = serde_json::json!({
        "type": vc.kind,
        "options": vc.options,
        "pass_score": rollout::PASS_SCORE,
        "prompts": report.prompts,
        "labelled": report.labelled,
        "with_gold": report.with_gold,
        "label_is_gold": report.label_is_gold,
    });
    rollout::write_scores_record(wd.root(), &label, &record)?;
    Ok(report)
}

/// A shard's saved rollouts, each with the answer the extractor reads
/// (valid ones only), in prompt order.
async fn ballots(
    ctx: &datafusion::prelude::SessionContext,
    v: &dyn Verifier,
    shard: u32,
    validity: Validity,
) -> Result<Vec<Ballot>, RescoreError> {
    let query = format!(
        "SELECT r.id, r.rollout_idx, r.response, {} AS valid, i.answer, i.metadata \
         FROM rollouts r JOIN inputs i ON r.id = i.id \
         WHERE i.shard = {} AND r.error IS NULL ORDER BY r.id, r.rollout_idx",
        validity.sql("r"),
        shard
    );
    let mut stream = ctx.sql(&query).await?.execute_stream().await?;
    let mut rows: Vec<Ballot> = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let (id, response, answer, metadata) = (
            utf8(&batch, "id")?,
            utf8(&batch, "response")?,
            utf8(&batch, "answer")?,
            utf8(&batch, "metadata")?,
        );
        let idx = u32s(&batch, "rollout_idx")?;
        let valid = bools(&batch, "valid");
        for i in 0..batch.num_rows() {
            let ok = valid.is_valid(i) && valid.value(i) && response.is_valid(i);
            let pred = ok
                .then(|| {
                    v.verify(&Sample {
                        response: response.value(i),
                        gold: "",
                        metadata: metadata.is_valid(i).then(|| metadata.value(i)),
                    })
                    .pred
                })
                .flatten();
            rows.push(Ballot {
                id: id.value(i).to_string(),
                rollout_idx: idx.value(i),
                valid: ok,
                pred,
                gold: answer.is_valid(i).then(|| answer.value(i).to_string()),
            });
        }
    }
    Ok(rows)
}

/// The verdict columns of a shard's rollouts, row for row.
#[derive(Default)]
struct Verdicts {
    score: Vec<Option<f64>>,
    outcome: Vec<&'static str>,
    label: Vec<Option<String>>,
    share: Vec<Option<f64>>,
}

/// Votes each prompt of `rows` (consecutive rows of one id) and scores
/// every rollout by agreement with its prompt's label, counting into
/// `report`.
fn count_votes(
    v: &dyn Verifier,
    options: &Options,
    rows: &[Ballot],
    report: &mut MajorityReport,
) -> Verdicts {
    let mut out = Verdicts::default();
    let mut start = 0;
    while start < rows.len() {
        let end = rows[start..]
            .iter()
            .position(|r| r.id != rows[start].id)
            .map_or(rows.len(), |p| start + p);
        let prompt = &rows[start..end];
        let answers: Vec<Option<String>> = prompt
            .iter()
            .filter(|r| r.valid)
            .map(|r| r.pred.clone())
            .collect();
        let vote = vote(v, options, &answers);
        if !answers.is_empty() {
            report.prompts += 1;
        }
        if let Some(l) = &vote.label {
            report.labelled += 1;
            if let Some(gold) = &prompt[0].gold {
                report.with_gold += 1;
                report.label_is_gold += u64::from(same(v, options.extractor, l, gold));
            }
        }
        let mut k = 0;
        for row in prompt {
            let (score, outcome) = if !row.valid {
                (None, "not_valid")
            } else {
                let agrees = vote.agrees[k];
                k += 1;
                match (&vote.label, &row.pred) {
                    (None, _) => (None, "unlabelled"),
                    (Some(_), None) => (Some(0.0), "no_answer"),
                    (Some(_), Some(_)) if agrees => (Some(1.0), "agrees"),
                    (Some(_), Some(_)) => (Some(0.0), "disagrees"),
                }
            };
            if score.is_some() {
                report.scored += 1;
                report.agree += u64::from(score == Some(1.0));
            }
            out.score.push(score);
            out.outcome.push(outcome);
            out.label.push(vote.label.clone());
            out.share.push(row.valid.then_some(vote.share));
        }
        start = end;
    }
    out
}

/// Writes a shard's verdicts as `scores/<label>/shard_NNNN.parquet`.
fn write_shard(
    wd: &WorkDir,
    label: &str,
    shard: u32,
    rows: &[Ballot],
    out: Verdicts,
) -> Result<(), RescoreError> {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.id.as_str()),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.rollout_idx),
        )),
        Arc::new(Float64Array::from(out.score)),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.pred.as_deref()),
        )),
        Arc::new(StringArray::from(vec![label; n])),
        Arc::new(StringArray::from(out.outcome)),
        Arc::new(StringArray::from(out.label)),
        Arc::new(Float64Array::from(out.share)),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    let path = rollout::score_path(wd.root(), label, shard);
    let mut file = ParquetFile::create(&path, schema())?;
    file.write(&batch)?;
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(extractor: Extractor) -> Options {
        Options {
            extractor,
            min_share: 0.5,
        }
    }

    fn answers(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|a| a.map(str::to_string)).collect()
    }

    #[test]
    fn equal_answers_written_differently_vote_together() {
        let o = options(Extractor::Math);
        let v = o.verifier();
        let vote = vote(
            v.as_ref(),
            &o,
            &answers(&[Some("1/2"), Some("0.5"), Some("3"), Some("\\frac{1}{2}")]),
        );
        assert_eq!(vote.label.as_deref(), Some("1/2"));
        assert_eq!(vote.share, 0.75);
        assert_eq!(vote.agrees, vec![true, true, false, true]);
    }

    #[test]
    fn ties_low_shares_and_no_answers_leave_a_prompt_unlabelled() {
        let o = options(Extractor::Math);
        let v = o.verifier();
        let tie = vote(v.as_ref(), &o, &answers(&[Some("1"), Some("2")]));
        assert_eq!((tie.label, tie.agrees), (None, vec![false, false]));
        // 7 once of three, the others found no answer: 1/3 < 0.5.
        let low = vote(v.as_ref(), &o, &answers(&[None, Some("7"), None]));
        assert_eq!(low.label, None);
        assert!((low.share - 1.0 / 3.0).abs() < 1e-12);
        let none = vote(v.as_ref(), &o, &answers(&[None, None]));
        assert_eq!((none.label, none.share), (None, 0.0));
        // Options letters by the mcq rules.
        let o = options(Extractor::Mcq);
        let v = o.verifier();
        let mcq = vote(v.as_ref(), &o, &answers(&[Some("B"), Some("B"), Some("C")]));
        assert_eq!(mcq.label.as_deref(), Some("B"));
    }

    #[test]
    fn options_are_checked() {
        let o: Map<String, Value> = serde_json::from_str(r#"{"extractor": "regex"}"#).unwrap();
        assert!(
            Options::read(&o)
                .unwrap_err()
                .to_string()
                .contains("extractor")
        );
        let o: Map<String, Value> = serde_json::from_str(r#"{"min_share": 0}"#).unwrap();
        assert!(
            Options::read(&o)
                .unwrap_err()
                .to_string()
                .contains("min_share")
        );
        assert!(Options::read(&Map::new()).is_ok());
    }

    #[test]
    fn maj_at_k_takes_the_first_k_answers_and_splits_ties() {
        let a = answers(&[
            Some("0.5"),
            Some("2"),
            Some("1/2"),
            None,
            Some("2"),
            Some("2"),
        ]);
        let right = [true, false, true, false, false, false];
        let m = maj_at(Extractor::Math, &a, &right, &[1, 2, 3, 4, 6, 8]);
        // k=1: 0.5 right; k=2: 0.5 and 2 tie, one right; k=3: 1/2 = 0.5 wins;
        // k=4: the same (no answer does not vote); k=6: 2 wins (3 to 2).
        assert_eq!(
            m,
            vec![Some(1.0), Some(0.5), Some(1.0), Some(1.0), Some(0.0), None]
        );
        let none = answers(&[None, None]);
        assert_eq!(
            maj_at(Extractor::Math, &none, &[false, false], &[2]),
            vec![Some(0.0)]
        );
        let mcq = answers(&[Some("C"), Some("B"), Some("B")]);
        assert_eq!(
            maj_at(Extractor::Mcq, &mcq, &[false, true, true], &[2, 3]),
            vec![Some(0.5), Some(1.0)]
        );
        assert_eq!(extractor_of("math-rlvr"), Some(Extractor::Math));
        assert_eq!(extractor_of("numeric"), None);
    }
}
