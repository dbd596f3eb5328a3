//! Run statistics: what was sampled, how often it passed (per prompt and as
//! unbiased pass@k), what early stop saved, token and latency percentiles,
//! and the best-of-N error for numeric verifiers. Everything is computed
//! from the saved data with SQL aggregates and one streaming pass over the
//! `prompts` view, so memory does not grow with the number of rollouts.

pub mod accuracy;
pub mod charts;
pub mod compare;
pub mod ifeval;
pub mod report;

use crate::sql::columns::{float_at, one_row};
use crate::store::state::GuardRecord;
use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::store::{RunState, WorkDir};

/// Percentiles of one quantity (approximate, t-digest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values counted.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

/// Unbiased pass@k over the prompts with at least `k` valid rollouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassAtK {
    /// k.
    pub k: u64,
    /// Mean pass@k.
    pub value: f64,
    /// Prompts it averages over.
    pub prompts: u64,
}

impl Stats {
    /// Whether the verdicts are agreement with a majority vote (not
    /// correctness): the headline then says so.
    pub fn is_vote(&self) -> bool {
        crate::scoring::Family::of(&self.verifier) == Some(crate::scoring::Family::Majority)
    }

    /// The vote's labels against the gold answers, when the verdicts are
    /// a vote and some labelled prompt has gold.
    pub fn vote_accuracy(&self) -> Option<&MajorityLabels> {
        if !self.is_vote() {
            return None;
        }
        self.majority_labels
            .iter()
            .find(|m| m.label == self.verdicts)
            .filter(|m| m.with_gold > 0)
    }
}

/// A majority-vote labelling against the gold answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MajorityLabels {
    /// Its scores label.
    pub label: String,
    /// Prompts with valid rollouts.
    pub prompts: u64,
    /// Of which labelled.
    pub labelled: u64,
    /// Labelled prompts with a gold answer.
    pub with_gold: u64,
    /// Of those, the label equal to the gold.
    pub label_is_gold: u64,
}

/// One histogram bar: `[lo, hi)` (the last bin includes `hi`) and its count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Values in the bin.
    pub count: u64,
}

/// The numbers of `summary/stats.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The work dir.
    pub work_dir: String,
    /// `sampler.model`.
    pub model: String,
    /// The verdicts used (`inline` or a scores label).
    pub verdicts: String,
    /// `verifier.type`.
    pub verifier: String,
    /// Prompts in the input.
    pub prompts: u64,
    /// Prompts with at least one rollout.
    pub prompts_sampled: u64,
    /// Finished rollouts (responses, truncated ones included; a failed
    /// request is no rollout: its rollouts were requested again).
    pub rollouts: u64,
    /// Valid rollouts (a response, no error, and not truncated unless the
    /// run keeps truncated responses).
    pub valid: u64,
    /// Truncated rollouts.
    pub truncated: u64,
    /// Rows of failed requests (kept for audit; not rollouts).
    pub errors: u64,
    /// Valid rollouts that passed (score ≥ 1).
    pub passed: u64,
    /// `passed / valid`.
    pub pass_rate: Option<f64>,
    /// Mean of the per-prompt pass rates.
    pub mean_prompt_pass_rate: Option<f64>,
    /// Accuracy as an evaluation reports it (every rollout counted, a
    /// truncated one as a failure) with its 95% interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<accuracy::Accuracy>,
    /// Prompts whose valid rollouts all passed.
    pub prompts_all_pass: u64,
    /// Prompts whose valid rollouts all failed.
    pub prompts_all_fail: u64,
    /// Prompts with both.
    pub prompts_mixed: u64,
    /// Sampled prompts without a valid rollout.
    pub prompts_no_valid: u64,
    /// pass@1, 2, 4, … up to the most valid rollouts of a prompt.
    pub pass_at_k: Vec<PassAtK>,
    /// maj@k (self-consistency) at the same k, over prompts with a gold
    /// answer, when the verdicts are `math-rlvr` or `mcq-rlvr` ones: the
    /// most common answer of the first k valid rollouts is right.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maj_at_k: Vec<PassAtK>,
    /// Majority-vote labellings of this work dir (`scores/<label>/` of
    /// `verifier.type=majority`) and how often their label equals the gold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub majority_labels: Vec<MajorityLabels>,
    /// IFEval's numbers, for a run whose verdicts hold per-instruction
    /// results (the `ifeval` verifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifeval: Option<ifeval::IfevalStats>,
    /// What decontamination and dedup found (`data/hygiene.json`), when
    /// they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hygiene: Option<crate::hygiene::Report>,
    /// Mean rollouts per sampled prompt.
    pub mean_rollouts_per_prompt: Option<f64>,
    /// Sampled prompts by their number of rollouts.
    pub rollouts_per_prompt: BTreeMap<u64, u64>,
    /// `sampling.max_rollouts`.
    pub max_rollouts: u64,
    /// `sampling.early_stop`.
    pub early_stop: bool,
    /// Share of `prompts_sampled × max_rollouts` not requested.
    pub early_stop_saved: Option<f64>,
    /// Completion tokens of passing valid responses.
    pub completion_tokens_pass: Percentiles,
    /// Completion tokens of failing valid responses.
    pub completion_tokens_fail: Percentiles,
    /// Request latency.
    pub latency_ms: Percentiles,
    /// Seconds from the first to the last saved response.
    pub span_seconds: Option<f64>,
    /// Completion tokens per second over that span.
    pub tokens_per_second: Option<f64>,
    /// Rollouts per second over that span.
    pub rollouts_per_second: Option<f64>,
    /// Requests per second over that span (from `state.json`'s count).
    pub requests_per_second: Option<f64>,
    /// Requests sent by `rsr sample` (all runs on this work dir).
    pub requests: u64,
    /// Retries made.
    pub retries: u64,
    /// Histogram of per-prompt pass rates (10 bins over [0, 1]).
    pub pass_rate_histogram: Vec<Bin>,
    /// Numeric verifier: the smallest absolute error per prompt (best of N).
    pub best_of_n_error: Option<Percentiles>,
    /// Sampled prompts with two or more valid responses.
    pub prompts_multi: u64,
    /// Of which every valid response was the same (case and whitespace
    /// folded): the sampling pitfall.
    pub prompts_identical: u64,
    /// Valid rollouts of prompts with a gold answer.
    pub answerable: u64,
    /// Of which the verifier found no answer: the extraction pitfall.
    pub no_answer: u64,
    /// The pitfall guards' window figures, from `state.json`.
    pub guards: BTreeMap<String, GuardRecord>,
    /// Guards switched off by their `sampling.allow_*` key.
    pub guards_off: Vec<String>,
    /// With a scores label: how its verdicts agree with the inline ones on
    /// the valid rollouts both scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
    /// Requests sent to a judge server (model verifiers, all runs).
    #[serde(default)]
    pub judge_requests: u64,
    /// Prompt tokens of those requests.
    #[serde(default)]
    pub judge_prompt_tokens: u64,
    /// Completion tokens of those requests.
    #[serde(default)]
    pub judge_completion_tokens: u64,
    /// What sampling and judging spent, derived from the tokens and the
    /// current `pricing` (never stored as truth: a price fixed later fixes
    /// every figure).
    #[serde(default)]
    pub spending: Spending,
}

/// Tokens and cost: what was spent, what early stop saved, and what each
/// kept training row cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spending {
    /// Sampling requests answered (one per distinct prompt, step and time).
    pub requests: u64,
    /// Their prompt tokens (once per request).
    pub prompt_tokens: u64,
    /// Their completion tokens.
    pub completion_tokens: u64,
    /// Sampling cost in USD (`pricing.input`/`output`); null without prices.
    pub cost: Option<f64>,
    /// The share of the online prices `cost` was counted at: a batch
    /// API's discount (`pricing.batch_discount`), null when online.
    #[serde(default)]
    pub batch_share: Option<f64>,
    /// Judge cost in USD (`pricing.judge_*`); null without prices.
    pub judge_cost: Option<f64>,
    /// Tokens early stop did not spend: the rollouts not requested (against
    /// `max_rollouts` per sampled prompt) at the run's tokens per rollout.
    pub early_stop_saved_tokens: Option<f64>,
    /// The same in USD.
    pub early_stop_saved_cost: Option<f64>,
    /// Per training file (its manifest in `train/`): tokens and cost of
    /// the whole run (judge included) per row it kept.
    pub per_row: Vec<RowCost>,
}

/// What one kept training row cost, for one formatter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowCost {
    /// The formatter's name.
    pub formatter: String,
    /// Rows it wrote.
    pub rows: u64,
    /// Tokens (prompt + completion, sampling and judging) per row.
    pub tokens_per_row: Option<f64>,
    /// USD per row; null without prices.
    pub cost_per_row: Option<f64>,
}

/// Pass/fail agreement between the inline verdicts and a scores label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Both pass.
    pub both_pass: u64,
    /// The inline verdict passes, the label's fails.
    pub inline_only: u64,
    /// The label's verdict passes, the inline one fails.
    pub label_only: u64,
    /// Both fail.
    pub both_fail: u64,
}

/// Tokens and cost of the run (see [`Spending`]).
async fn spending(
    ctx: &SessionContext,
    wd: &WorkDir,
    config: &Config,
    s: &Stats,
) -> datafusion::error::Result<Spending> {
    let spent = one_row(
        ctx,
        "SELECT count(*), sum(p), sum(c) FROM ( \
           SELECT id, step, created_at, max(prompt_tokens) AS p, sum(completion_tokens) AS c \
           FROM rollouts WHERE error IS NULL GROUP BY id, step, created_at)",
    )
    .await?;
    let n = |i: usize| spent.get(i).copied().flatten().unwrap_or(0.0) as u64;
    let p = &config.pricing.for_mode(config.sampler.mode);
    let price = |tokens_in: u64, tokens_out: u64, input: Option<f64>, output: Option<f64>| {
        Some((tokens_in as f64 * input? + tokens_out as f64 * output?) / 1e6)
    };
    let mut out = Spending {
        requests: n(0),
        prompt_tokens: n(1),
        completion_tokens: n(2),
        ..Spending::default()
    };
    out.cost = price(out.prompt_tokens, out.completion_tokens, p.input, p.output);
    out.batch_share = (config.sampler.mode == crate::config::SamplerMode::Batch)
        .then_some(config.pricing.batch_discount);
    // The judge's prices as given now, else as each label recorded them
    // when `rsr verify` was given them.
    let given = p.judge_input.zip(p.judge_output);
    let labels: Vec<(String, crate::store::rollout::JudgeSpend)> =
        crate::store::rollout::score_labels(wd.root())
            .into_iter()
            .filter_map(|l| crate::store::rollout::judge_spend(wd.root(), &l).map(|j| (l, j)))
            .collect();
    out.judge_cost = match given {
        Some((i, o)) => price(
            s.judge_prompt_tokens,
            s.judge_completion_tokens,
            Some(i),
            Some(o),
        ),
        None if s.judge_requests > 0 => labels
            .iter()
            .map(|(_, j)| j.cost(None))
            .sum::<Option<f64>>(),
        None => None,
    };
    let tokens = (out.prompt_tokens + out.completion_tokens) as f64;
    if s.early_stop && s.rollouts > 0 {
        let budget = s.prompts_sampled * s.max_rollouts;
        let saved = budget.saturating_sub(s.rollouts) as f64;
        let per_rollout = tokens / s.rollouts as f64;
        out.early_stop_saved_tokens = Some(saved * per_rollout);
        out.early_stop_saved_cost = out.cost.map(|c| saved * c / s.rollouts as f64);
    }
    let mut manifests = crate::formatter::manifest::Manifest::all_in(&wd.root().join("train"));
    manifests.sort_by(|a, b| a.file.cmp(&b.file));
    for m in manifests {
        let rows = m.rows;
        // A file counts the judge requests of the label it was built from
        // (none for inline verdicts), not those of other labels.
        let judge = labels.iter().find(|(l, _)| *l == m.scores).map(|(_, j)| j);
        let (all_tokens, all_cost) = match judge {
            Some(j) => (
                tokens + (j.prompt_tokens + j.completion_tokens) as f64,
                out.cost.zip(j.cost(given)).map(|(c, j)| c + j),
            ),
            None => (tokens, out.cost),
        };
        out.per_row.push(RowCost {
            formatter: m.formatter.name.clone().unwrap_or(m.formatter.kind.clone()),
            rows,
            tokens_per_row: (rows > 0).then(|| all_tokens / rows as f64),
            cost_per_row: all_cost.filter(|_| rows > 0).map(|c| c / rows as f64),
        });
    }
    Ok(out)
}

/// maj@k over the prompts with a gold answer, group of shards by group (memory
/// bounded by a group): each prompt's valid rollouts in rollout order,
/// their extracted answers (`pred`) grouped by the verifier's equivalence.
async fn maj_at_k(
    wd: &WorkDir,
    state: &RunState,
    label: Option<&str>,
    extractor: crate::scoring::majority::Extractor,
    ks: &[u64],
) -> Result<Vec<PassAtK>, AnalyzeError> {
    use crate::sql::columns::{f64s, utf8};
    let validity = crate::sql::saved_validity(wd)?;
    let pass = crate::store::rollout::pass_score(wd.root(), label);
    let mut sums = vec![(0.0, 0u64); ks.len()];
    let mut add = |answers: &[Option<String>], passes: &[bool]| {
        for (i, m) in crate::scoring::majority::maj_at(extractor, answers, passes, ks)
            .into_iter()
            .enumerate()
        {
            if let Some(m) = m {
                sums[i].0 += m;
                sums[i].1 += 1;
            }
        }
    };
    for group in crate::sql::shard_groups(wd, state) {
        let ctx = crate::sql::shard_session(wd, label, &group, validity).await?;
        let mut stream = ctx
            .sql(
                "SELECT r.id, r.pred, r.score FROM results r JOIN inputs i ON r.id = i.id \
                 WHERE r.valid AND i.answer IS NOT NULL ORDER BY r.id, r.rollout_idx",
            )
            .await?
            .execute_stream()
            .await?;
        let (mut id, mut answers, mut passes) = (String::new(), Vec::new(), Vec::new());
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let arrow = |e: arrow::error::ArrowError| {
                datafusion::error::DataFusionError::ArrowError(Box::new(e), None)
            };
            let (ids, preds, scores) = (
                utf8(&b, "id").map_err(arrow)?,
                utf8(&b, "pred").map_err(arrow)?,
                f64s(&b, "score").map_err(arrow)?,
            );
            for i in 0..b.num_rows() {
                if ids.value(i) != id {
                    if !answers.is_empty() {
                        add(&answers, &passes);
                    }
                    id = ids.value(i).to_string();
                    answers.clear();
                    passes.clear();
                }
                answers.push(preds.is_valid(i).then(|| preds.value(i).to_string()));
                passes.push(scores.is_valid(i) && scores.value(i) >= pass);
            }
        }
        if !answers.is_empty() {
            add(&answers, &passes);
        }
    }
    Ok(ks
        .iter()
        .zip(sums)
        .filter(|(_, (_, n))| *n > 0)
        .map(|(&k, (sum, n))| PassAtK {
            k,
            value: sum / n as f64,
            prompts: n,
        })
        .collect())
}

/// The majority-vote labellings recorded under `scores/`.
fn majority_labels(root: &std::path::Path) -> Vec<MajorityLabels> {
    let Ok(entries) = std::fs::read_dir(crate::store::rollout::scores_dir(root)) else {
        return Vec::new();
    };
    let mut out: Vec<MajorityLabels> = entries
        .flatten()
        .filter_map(|e| {
            let label = e.file_name().to_string_lossy().into_owned();
            let text =
                std::fs::read_to_string(crate::store::rollout::scores_verifier_path(root, &label))
                    .ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            let kind = v.get("type")?.as_str()?;
            (crate::scoring::Family::of(kind) == Some(crate::scoring::Family::Majority))
                .then_some(())?;
            let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
            Some(MajorityLabels {
                label,
                prompts: n("prompts")?,
                labelled: n("labelled")?,
                with_gold: n("with_gold")?,
                label_is_gold: n("label_is_gold")?,
            })
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// The unbiased pass@k estimate for `n` samples with `c` correct:
/// `1 − C(n−c, k) / C(n, k)`, computed as a stable product.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> f64 {
    if k == 0 || k > n {
        return f64::NAN;
    }
    if n - c < k {
        return 1.0;
    }
    let mut fail = 1.0;
    for i in (n - c + 1)..=n {
        fail *= 1.0 - k as f64 / i as f64;
    }
    1.0 - fail
}

/// `1, 2, 4, …` up to `max`.
pub fn ks(max: u64) -> Vec<u64> {
    std::iter::successors(Some(1u64), |k| k.checked_mul(2))
        .take_while(|&k| k <= max)
        .collect()
}

async fn percentiles(
    ctx: &SessionContext,
    expr: &str,
    from: &str,
) -> datafusion::error::Result<Percentiles> {
    let q = |p: f64| format!("approx_percentile_cont(CAST({expr} AS DOUBLE), {p})");
    let row = one_row(
        ctx,
        &format!(
            "SELECT count({expr}), avg(CAST({expr} AS DOUBLE)), {}, {}, {}, {}, max(CAST({expr} AS DOUBLE)) FROM {from}",
            q(0.5),
            q(0.9),
            q(0.95),
            q(0.99)
        ),
    )
    .await?;
    let get = |i: usize| row.get(i).copied().flatten();
    Ok(Percentiles {
        count: get(0).unwrap_or(0.0) as u64,
        mean: get(1),
        p50: get(2),
        p90: get(3),
        p95: get(4),
        p99: get(5),
        max: get(6),
    })
}

/// Percentiles of values held in memory (exact).
pub fn exact_percentiles(values: &mut [f64]) -> Percentiles {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let at = |q: f64| (n > 0).then(|| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
    Percentiles {
        count: n as u64,
        mean: (n > 0).then(|| values.iter().sum::<f64>() / n as f64),
        p50: at(0.5),
        p90: at(0.9),
        p95: at(0.95),
        p99: at(0.99),
        max: values.last().copied(),
    }
}

/// Equal-width histogram of `values` over `[lo, hi]` with `bins` bins.
pub fn histogram(values: impl IntoIterator<Item = f64>, lo: f64, hi: f64, bins: usize) -> Vec<Bin> {
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut out: Vec<Bin> = (0..bins)
        .map(|i| Bin {
            lo: lo + i as f64 * width,
            hi: lo + (i + 1) as f64 * width,
            count: 0,
        })
        .collect();
    for v in values {
        if v.is_finite() {
            let i = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
            out[i].count += 1;
        }
    }
    out
}

/// Errors computing or writing the statistics.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A query over the saved data failed.
    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// The work dir's state cannot be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A chart cannot be drawn.
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
    /// A file of `summary/` cannot be written or read back.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Computes the statistics of a work dir (with `label`'s verdicts, or the
/// inline ones).
pub async fn compute(
    wd: &WorkDir,
    config: &Config,
    label: Option<&str>,
) -> Result<Stats, AnalyzeError> {
    let ctx = crate::sql::session_with_scores(wd, label).await?;
    let pass = crate::store::rollout::pass_score(wd.root(), label);
    let state = RunState::load(&wd.state_path())?;
    let mut s = run_stats(wd, config, label, &state);
    if ctx.table("prompts").await.is_err() {
        return Ok(s);
    }
    pitfalls(&ctx, &mut s, &state, label, pass).await?;
    let per_prompt = prompt_counts(&ctx, &mut s).await?;
    s.pass_at_k = pass_at_ks(&per_prompt);
    if let Some(extractor) = crate::scoring::majority::extractor_of(&s.verifier) {
        let ks: Vec<u64> = s.pass_at_k.iter().map(|p| p.k).collect();
        s.maj_at_k = maj_at_k(wd, &state, label, extractor, &ks).await?;
    }
    s.majority_labels = majority_labels(wd.root());
    s.ifeval = ifeval::compute(&ctx).await?;
    s.hygiene = crate::hygiene::Report::load(wd.root()).filter(|r| r.checked());
    s.mean_rollouts_per_prompt =
        (s.prompts_sampled > 0).then(|| s.rollouts as f64 / s.prompts_sampled as f64);
    let budget = s.prompts_sampled * s.max_rollouts;
    // Truncated rollouts do not count toward max_rollouts (unless the run
    // keeps them), so a prompt may
    // take more than its budget: the saving is then none, never negative.
    s.early_stop_saved = (budget > 0).then(|| (1.0 - s.rollouts as f64 / budget as f64).max(0.0));
    tokens_and_speed(&ctx, &mut s, pass).await?;
    if crate::scoring::measures_error(&s.verifier) {
        s.best_of_n_error = Some(exact_percentiles(&mut best_errors(&ctx).await?));
    }
    s.spending = spending(&ctx, wd, config, &s).await?;
    Ok(s)
}

/// The run's identity and saved counters, before any query.
fn run_stats(wd: &WorkDir, config: &Config, label: Option<&str>, state: &RunState) -> Stats {
    Stats {
        work_dir: wd.root().display().to_string(),
        model: config.sampler.model.clone().unwrap_or_default(),
        verdicts: label.unwrap_or("inline").to_string(),
        // A label written by `rsr verify` names its own verifier.
        verifier: label
            .and_then(|l| crate::store::rollout::scores_verifier(wd.root(), l))
            .unwrap_or_else(|| config.verifier.kind.clone()),
        prompts: state.counters.prompts,
        max_rollouts: config.sampling.max_rollouts.get() as u64,
        early_stop: config.sampling.early_stop,
        requests: state.counters.requests,
        retries: state.counters.retries,
        guards: state.guards.clone(),
        guards_off: [
            ("truncation", config.sampling.allow_truncation),
            ("identical", config.sampling.allow_identical),
            ("no_answer", config.sampling.allow_no_answer),
        ]
        .into_iter()
        .filter(|(_, off)| *off)
        .map(|(name, _)| name.to_string())
        .collect(),
        ..Stats::default()
    }
}

/// The sampling and extraction pitfalls over the whole run (identical
/// responses, no answer found), the judge's counters, and the agreement of
/// `label`'s verdicts with the inline ones.
async fn pitfalls(
    ctx: &SessionContext,
    s: &mut Stats,
    state: &RunState,
    label: Option<&str>,
    pass: f64,
) -> Result<(), AnalyzeError> {
    let identical = one_row(
        ctx,
        "SELECT count(*), sum(CASE WHEN lo = hi THEN 1 ELSE 0 END) FROM ( \
           SELECT id, count(*) AS n, min(h) AS lo, max(h) AS hi FROM ( \
             SELECT r.id, r.response_hash AS h FROM results r WHERE r.valid) \
           GROUP BY id) WHERE n >= 2",
    )
    .await?;
    if label.is_some() {
        let inline = crate::store::rollout::PASS_SCORE;
        let a = one_row(
            ctx,
            &format!(
                "SELECT                    sum(CASE WHEN ro.score >= {inline:?} AND r.score >= {pass:?} THEN 1 ELSE 0 END),                    sum(CASE WHEN ro.score >= {inline:?} AND r.score < {pass:?} THEN 1 ELSE 0 END),                    sum(CASE WHEN ro.score < {inline:?} AND r.score >= {pass:?} THEN 1 ELSE 0 END),                    sum(CASE WHEN ro.score < {inline:?} AND r.score < {pass:?} THEN 1 ELSE 0 END)                  FROM results r JOIN rollouts ro                    ON r.id = ro.id AND r.rollout_idx = ro.rollout_idx AND ro.error IS NULL                  WHERE r.valid AND r.score IS NOT NULL AND ro.score IS NOT NULL"
            ),
        )
        .await?;
        let n = |i: usize| a[i].unwrap_or(0.0) as u64;
        s.agreement = (n(0) + n(1) + n(2) + n(3) > 0).then(|| Agreement {
            both_pass: n(0),
            inline_only: n(1),
            label_only: n(2),
            both_fail: n(3),
        });
    }
    s.judge_requests = state.counters.judge_requests;
    s.judge_prompt_tokens = state.counters.judge_prompt_tokens;
    s.judge_completion_tokens = state.counters.judge_completion_tokens;
    s.prompts_multi = identical[0].unwrap_or(0.0) as u64;
    s.prompts_identical = identical[1].unwrap_or(0.0) as u64;
    let answers = one_row(
        ctx,
        "SELECT count(*), sum(CASE WHEN r.pred IS NULL THEN 1 ELSE 0 END) \
         FROM results r JOIN inputs i ON r.id = i.id WHERE r.valid AND i.answer IS NOT NULL",
    )
    .await?;
    s.answerable = answers[0].unwrap_or(0.0) as u64;
    s.no_answer = answers[1].unwrap_or(0.0) as u64;
    Ok(())
}

/// One pass over the per-prompt counts: totals, outcome classes and the
/// pass-rate histogram; returns each sampled prompt's (valid, passing).
async fn prompt_counts(
    ctx: &SessionContext,
    s: &mut Stats,
) -> Result<Vec<(u64, u64)>, AnalyzeError> {
    let mut stream = ctx
        .sql("SELECT n_rollouts, n_valid, n_pass, n_truncated, n_errors, pass_rate FROM prompts")
        .await?
        .execute_stream()
        .await?;
    let mut rates = Vec::new();
    let mut per_prompt: Vec<(u64, u64)> = Vec::new();
    let mut counted: Vec<(u64, u64)> = Vec::new();
    while let Some(batch) = stream.next().await {
        let b = batch?;
        for i in 0..b.num_rows() {
            let int = |c: usize| float_at(&b, c, i).unwrap_or(0.0) as u64;
            let (n_rollouts, n_valid, n_pass) = (int(0), int(1), int(2));
            if n_rollouts == 0 {
                continue;
            }
            s.prompts_sampled += 1;
            s.rollouts += n_rollouts;
            s.valid += n_valid;
            s.passed += n_pass;
            s.truncated += int(3);
            s.errors += int(4);
            *s.rollouts_per_prompt.entry(n_rollouts).or_default() += 1;
            match (n_valid, n_pass) {
                (0, _) => s.prompts_no_valid += 1,
                (v, p) if p == v => s.prompts_all_pass += 1,
                (_, 0) => s.prompts_all_fail += 1,
                _ => s.prompts_mixed += 1,
            }
            if let Some(r) = float_at(&b, 5, i) {
                rates.push(r);
            }
            per_prompt.push((n_valid, n_pass));
            counted.push((n_pass, n_rollouts));
        }
    }
    s.pass_rate = (s.valid > 0).then(|| s.passed as f64 / s.valid as f64);
    s.mean_prompt_pass_rate =
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64);
    s.pass_rate_histogram = histogram(rates.iter().copied(), 0.0, 1.0, 10);
    s.accuracy = accuracy::Accuracy::of(counted);
    Ok(per_prompt)
}

/// pass@k for every k the prompts' valid counts allow, each over the
/// prompts with at least k valid rollouts.
fn pass_at_ks(per_prompt: &[(u64, u64)]) -> Vec<PassAtK> {
    let max_valid = per_prompt.iter().map(|&(n, _)| n).max().unwrap_or(0);
    ks(max_valid)
        .into_iter()
        .filter_map(|k| {
            let eligible: Vec<f64> = per_prompt
                .iter()
                .filter(|(n, _)| *n >= k)
                .map(|&(n, c)| pass_at_k(n, c, k))
                .collect();
            (!eligible.is_empty()).then(|| PassAtK {
                k,
                value: eligible.iter().sum::<f64>() / eligible.len() as f64,
                prompts: eligible.len() as u64,
            })
        })
        .collect()
}

/// Completion tokens of passing and failing responses, latency, and the
/// throughput over the span of saved responses.
async fn tokens_and_speed(
    ctx: &SessionContext,
    s: &mut Stats,
    pass: f64,
) -> Result<(), AnalyzeError> {
    s.completion_tokens_pass = percentiles(
        ctx,
        "completion_tokens",
        &format!("results WHERE valid AND score >= {pass:?}"),
    )
    .await?;
    s.completion_tokens_fail = percentiles(
        ctx,
        "completion_tokens",
        &format!("results WHERE valid AND score < {pass:?}"),
    )
    .await?;
    s.latency_ms = percentiles(ctx, "latency_ms", "results WHERE error IS NULL").await?;
    let span = one_row(
        ctx,
        "SELECT CAST(max(CAST(created_at AS BIGINT)) - min(CAST(created_at AS BIGINT)) AS DOUBLE) / 1000.0, \
         sum(completion_tokens), count(*) FROM rollouts",
    )
    .await?;
    if let (Some(Some(span)), Some(tokens), Some(rows)) = (span.first(), span.get(1), span.get(2))
        && *span > 0.0
    {
        s.span_seconds = Some(*span);
        s.tokens_per_second = tokens.map(|t| t / span);
        s.rollouts_per_second = rows.map(|r| r / span);
        s.requests_per_second = (s.requests > 0).then(|| s.requests as f64 / span);
    }
    Ok(())
}

/// The smallest absolute error of each prompt's valid responses (numeric).
pub async fn best_errors(ctx: &SessionContext) -> datafusion::error::Result<Vec<f64>> {
    let mut out = Vec::new();
    let mut stream = ctx
        .sql(
            "SELECT min(numeric_error(r.response, i.answer)) AS best FROM results r \
             JOIN inputs i ON r.id = i.id WHERE r.valid GROUP BY r.id",
        )
        .await?
        .execute_stream()
        .await?;
    while let Some(b) = stream.next().await {
        let b = b?;
        out.extend(
            (0..b.num_rows())
                .filter_map(|i| float_at(&b, 0, i))
                .filter(|v| v.is_finite()),
        );
    }
    Ok(out)
}

/// Completion-token histograms of passing and failing valid responses,
/// over the same `bins` bins from 0 to the longest.
pub async fn token_histograms(
    ctx: &SessionContext,
    bins: usize,
) -> datafusion::error::Result<(Vec<Bin>, Vec<Bin>)> {
    let max = one_row(
        ctx,
        "SELECT max(completion_tokens) FROM results WHERE valid",
    )
    .await?;
    let max = max.first().copied().flatten().unwrap_or(0.0).max(1.0);
    let width = (max / bins as f64).max(1.0);
    let hi = width * bins as f64;
    let empty = || histogram(std::iter::empty(), 0.0, hi, bins);
    let (mut pass, mut fail) = (empty(), empty());
    let batches = ctx
        .sql(&format!(
            "SELECT least(CAST(floor(completion_tokens / {width:?}) AS BIGINT), {last}) AS bin, \
             score >= 1 AS pass, count(*) AS n FROM results \
             WHERE valid AND completion_tokens IS NOT NULL AND score IS NOT NULL GROUP BY 1, 2",
            last = bins - 1
        ))
        .await?
        .collect()
        .await?;
    for b in &batches {
        let is_pass = b.column(1).as_boolean();
        for i in 0..b.num_rows() {
            let bin = float_at(b, 0, i).unwrap_or(0.0) as usize;
            let n = float_at(b, 2, i).unwrap_or(0.0) as u64;
            let target = if is_pass.value(i) {
                &mut pass
            } else {
                &mut fail
            };
            target[bin.min(bins - 1)].count += n;
        }
    }
    Ok((pass, fail))
}

/// Computes the statistics and writes `summary/stats.json`,
/// `summary/statistics.txt`, `summary/charts/*.png` and
/// `summary/report.html` (each file atomically).
pub async fn write_summary(
    wd: &WorkDir,
    config: &Config,
    label: Option<&str>,
) -> Result<Stats, AnalyzeError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| AnalyzeError::Io { path, source }
    };
    let write_atomic = |path: std::path::PathBuf, bytes: &[u8]| {
        crate::store::write_atomic(&path, bytes).map_err(io(&path))
    };
    let stats = compute(wd, config, label).await?;
    let dir = crate::store::summary_dir(wd.root());
    let charts_dir = crate::store::charts_dir(wd.root());
    std::fs::create_dir_all(&charts_dir).map_err(io(&charts_dir))?;
    let run = wd.root().file_name().map_or_else(
        || stats.work_dir.clone(),
        |n| n.to_string_lossy().into_owned(),
    );
    let charts = if stats.prompts_sampled > 0 {
        draw_charts(wd, label, &stats, &charts_dir, &run).await?
    } else {
        Vec::new()
    };
    let mut json = serde_json::to_string_pretty(&stats).expect("statistics serialize");
    json.push('\n');
    write_atomic(dir.join("stats.json"), json.as_bytes())?;
    write_atomic(dir.join("statistics.txt"), report::text(&stats).as_bytes())?;
    let embedded = charts
        .iter()
        .map(|(file, caption)| {
            let path = charts_dir.join(file);
            std::fs::read(&path)
                .map(|png| (caption.clone(), png))
                .map_err(io(&path))
        })
        .collect::<Result<Vec<_>, _>>()?;
    write_atomic(
        dir.join("report.html"),
        report::html(&stats, &embedded).as_bytes(),
    )?;
    Ok(stats)
}

/// The summary's charts, each drawn to a temporary file and renamed into
/// place; returns each file's name and caption.
async fn draw_charts(
    wd: &WorkDir,
    label: Option<&str>,
    stats: &Stats,
    charts_dir: &std::path::Path,
    run: &str,
) -> Result<Vec<(String, String)>, AnalyzeError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| AnalyzeError::Io { path, source }
    };
    let mut charts: Vec<(String, String)> = Vec::new();
    let ctx = crate::sql::session_with_scores(wd, label).await?;
    let chart = |name: &str| charts_dir.join(name);
    let tmp = |name: &str| charts_dir.join(format!("{name}.tmp.png"));
    let mut commit = |name: &str, caption: String| -> Result<(), AnalyzeError> {
        std::fs::rename(tmp(name), chart(name)).map_err(io(&chart(name)))?;
        charts.push((name.to_string(), caption));
        Ok(())
    };
    charts::histogram(
        &tmp("pass_rate.png"),
        &format!("Per-prompt pass rate — {run}"),
        "pass rate (passing / valid rollouts)",
        "prompts",
        &stats.pass_rate_histogram,
    )?;
    commit("pass_rate.png", "Prompts by pass rate".into())?;
    let (pass, fail) = token_histograms(&ctx, 30).await?;
    charts::two_histograms(
        &tmp("completion_tokens.png"),
        &format!("Completion length, passing vs failing — {run}"),
        "completion tokens",
        "valid responses",
        ("passing", &pass),
        ("failing", &fail),
    )?;
    commit(
        "completion_tokens.png",
        "Completion tokens of valid responses".into(),
    )?;
    let max_n = stats.rollouts_per_prompt.keys().max().copied().unwrap_or(1);
    let per_prompt: Vec<Bin> = (1..=max_n)
        .map(|n| Bin {
            lo: n as f64 - 0.5,
            hi: n as f64 + 0.5,
            count: stats.rollouts_per_prompt.get(&n).copied().unwrap_or(0),
        })
        .collect();
    charts::histogram(
        &tmp("rollouts_per_prompt.png"),
        &format!("Rollouts per prompt — {run}"),
        "rollouts (rows) per prompt",
        "prompts",
        &per_prompt,
    )?;
    commit(
        "rollouts_per_prompt.png",
        "Prompts by number of rollouts".into(),
    )?;
    if stats.best_of_n_error.is_some() {
        let mut errors = best_errors(&ctx).await?;
        let top = exact_percentiles(&mut errors).p99.unwrap_or(1.0).max(1e-9);
        let bins = histogram(errors.iter().map(|e| e.min(top)), 0.0, top, 30);
        charts::histogram(
            &tmp("best_of_n_error.png"),
            &format!("Best-of-N absolute error per prompt — {run}"),
            "smallest absolute error among valid responses (clipped at p99)",
            "prompts",
            &bins,
        )?;
        commit("best_of_n_error.png", "Best-of-N error per prompt".into())?;
    }
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `1 − C(n−c, k) / C(n, k)` with exact binomials.
    fn closed_form(n: u64, c: u64, k: u64) -> f64 {
        fn choose(n: u64, k: u64) -> f64 {
            if k > n {
                return 0.0;
            }
            (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
        }
        1.0 - choose(n - c, k) / choose(n, k)
    }

    #[test]
    fn pass_at_k_matches_the_closed_form() {
        for n in 1..=16 {
            for c in 0..=n {
                for k in 1..=n {
                    let (a, b) = (pass_at_k(n, c, k), closed_form(n, c, k));
                    assert!((a - b).abs() < 1e-12, "n={n} c={c} k={k}: {a} vs {b}");
                }
            }
        }
        assert_eq!(pass_at_k(4, 1, 1), 0.25);
        assert_eq!(pass_at_k(4, 0, 4), 0.0);
        assert_eq!(pass_at_k(4, 1, 4), 1.0);
        assert!(pass_at_k(2, 1, 3).is_nan());
    }

    #[test]
    fn powers_of_two_and_histograms() {
        assert_eq!(ks(8), [1, 2, 4, 8]);
        assert_eq!(ks(6), [1, 2, 4]);
        assert!(ks(0).is_empty());
        let h = histogram([0.0, 0.05, 0.5, 1.0, 1.0], 0.0, 1.0, 10);
        assert_eq!(
            h.iter().map(|b| b.count).collect::<Vec<_>>(),
            [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
        );
        let p = exact_percentiles(&mut [4.0, 1.0, 3.0, 2.0]);
        assert_eq!((p.p50, p.max, p.mean), (Some(2.0), Some(4.0), Some(2.5)));
    }
}
