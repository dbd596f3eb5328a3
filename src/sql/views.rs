//! The `results` and `prompts` views, defined over `rollouts`, `scores` and
//! `inputs` when a work dir has rollouts.
//!
//! `results` is one row per saved row with the selected verdict: the inline
//! `score`/`pred` written while sampling, or those of `scores/<label>/`.
//! A rollout is `valid` by [`Validity`]: a response, no error, and not
//! truncated unless the run keeps truncated responses. A row with an `error` is a failed request, kept for audit:
//! its rollout was requested again under the same `rollout_idx`, so it is
//! no rollout of its own. `prompts` is one row per input with its counts
//! (`n_rollouts` finished rollouts, `n_errors` failed requests' rows) and
//! its pass rate (`n_pass / n_valid`).

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use crate::store::rollout::{PASS_SCORE, Validity};

/// Rollout columns carried into `results`, verdict excluded.
const ROLLOUT_COLUMNS: &str = "r.id, r.rollout_idx, r.step, r.response, r.reasoning, \
     r.finish_reason, r.truncated, r.error, r.prompt_tokens, r.completion_tokens, \
     r.latency_ms, r.model, r.endpoint, r.created_at";

/// Creates `results` (with the verdicts of `scores` label `label`, or the
/// inline ones when `None`) and `prompts`.
pub async fn register(ctx: &SessionContext, label: Option<&str>, validity: Validity) -> Result<()> {
    let valid = format!("{} AS valid", validity.sql("r"));
    let results = match label {
        None => format!(
            "CREATE VIEW results AS SELECT {ROLLOUT_COLUMNS}, r.score, r.pred, \
             'inline' AS verifier, {valid} FROM rollouts r"
        ),
        Some(label) => {
            if !crate::store::rollout::is_valid_label(label) {
                return Err(DataFusionError::Plan(format!(
                    "scores label `{label}` must be a directory name of letters, digits, `.`, `_` or `-`"
                )));
            }
            format!(
                "CREATE VIEW results AS SELECT {ROLLOUT_COLUMNS}, s.score, s.pred, \
                 '{label}' AS verifier, {valid} FROM rollouts r LEFT JOIN \
                 (SELECT * FROM scores WHERE verifier = '{label}') s \
                 ON r.id = s.id AND r.rollout_idx = s.rollout_idx AND r.error IS NULL"
            )
        }
    };
    ctx.sql(&results).await?;
    // Aggregate per id first, then join the input columns: the group keys
    // stay small (ids), whatever the size of the prompts.
    let pass = format!("r.valid AND r.score >= {PASS_SCORE:?}");
    let prompts = format!(
        "CREATE VIEW prompts AS SELECT i.id, i.messages, i.answer, i.metadata, i.shard, \
         COALESCE(a.n_rollouts, 0) AS n_rollouts, COALESCE(a.n_valid, 0) AS n_valid, \
         COALESCE(a.n_pass, 0) AS n_pass, \
         CAST(a.n_pass AS DOUBLE) / CAST(NULLIF(a.n_valid, 0) AS DOUBLE) AS pass_rate, \
         a.mean_score, COALESCE(a.n_truncated, 0) AS n_truncated, \
         COALESCE(a.n_errors, 0) AS n_errors, a.mean_completion_tokens, \
         a.max_completion_tokens, a.total_completion_tokens \
         FROM inputs i LEFT JOIN (SELECT r.id, \
           sum(CASE WHEN r.error IS NULL THEN 1 ELSE 0 END) AS n_rollouts, \
           sum(CASE WHEN r.valid THEN 1 ELSE 0 END) AS n_valid, \
           sum(CASE WHEN {pass} THEN 1 ELSE 0 END) AS n_pass, \
           avg(CASE WHEN r.valid THEN r.score END) AS mean_score, \
           sum(CASE WHEN r.truncated THEN 1 ELSE 0 END) AS n_truncated, \
           sum(CASE WHEN r.error IS NOT NULL THEN 1 ELSE 0 END) AS n_errors, \
           avg(r.completion_tokens) AS mean_completion_tokens, \
           max(r.completion_tokens) AS max_completion_tokens, \
           sum(r.completion_tokens) AS total_completion_tokens \
           FROM results r GROUP BY r.id) a ON i.id = a.id"
    );
    ctx.sql(&prompts).await?;
    Ok(())
}
