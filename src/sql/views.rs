//! The core views, shipped as SQL files in `sql/views/` (compiled in) and
//! created over `rollouts`, `scores` and `inputs` when a work dir has
//! rollouts: `results` (one row per saved row with the selected verdict and
//! its validity), `prompts` (one row per input with its counts and pass
//! rate), and, for each formatter, `candidates`.
//!
//! Each file documents its placeholders (`{{name}}`), which are filled here:
//! the verdict source (inline or `scores/<label>/`), the run's validity
//! predicate ([`Validity`]) and the pass score ([`PASS_SCORE`]).

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use crate::store::rollout::{PASS_SCORE, Validity};

/// `sql/views/results.sql`.
pub const RESULTS: &str = include_str!("../../sql/views/results.sql");
/// `sql/views/prompts.sql`.
pub const PROMPTS: &str = include_str!("../../sql/views/prompts.sql");
/// `sql/views/disagreements.sql`.
pub const DISAGREEMENTS: &str = include_str!("../../sql/views/disagreements.sql");
/// `sql/views/candidates.sql`.
pub const CANDIDATES: &str = include_str!("../../sql/views/candidates.sql");
/// `sql/views/instructions.sql`.
pub const INSTRUCTIONS: &str = include_str!("../../sql/views/instructions.sql");

/// `sql/views/best.sql`, with `{pass_threshold}` to fill in.
pub const BEST: &str = include_str!("../../sql/views/best.sql");

/// `template` with each `{{name}}` replaced by its value.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut sql = template.to_string();
    for (name, value) in values {
        sql = sql.replace(&format!("{{{{{name}}}}}"), value);
    }
    debug_assert!(!sql.contains("{{"), "unfilled placeholder in:\n{sql}");
    sql
}

/// Creates `results` (with the verdicts of `scores` label `label`, or the
/// inline ones when `None`, and validity by `validity`) and `prompts` (a
/// valid rollout passes at `pass_score`, [`PASS_SCORE`] but for model
/// verifiers' labels: [`crate::store::rollout::pass_score`]).
pub async fn register(
    ctx: &SessionContext,
    label: Option<&str>,
    validity: Validity,
    pass_score: f64,
    hashed: bool,
) -> Result<()> {
    let (verdict, join) = match label {
        None => (
            "r.score, r.pred, 'inline' AS verifier".to_string(),
            String::new(),
        ),
        Some(label) => {
            if !crate::store::rollout::is_valid_label(label) {
                return Err(DataFusionError::Plan(format!(
                    "scores label `{label}` must be a directory name of letters, digits, `.`, `_` or `-`"
                )));
            }
            (
                format!("s.score, s.pred, '{label}' AS verifier"),
                format!(
                    "LEFT JOIN (SELECT * FROM scores WHERE verifier = '{label}') s \
                     ON r.id = s.id AND r.rollout_idx = s.rollout_idx AND r.error IS NULL"
                ),
            )
        }
    };
    let (valid, hash) = if hashed {
        (
            validity.sql_over("r", crate::store::rollout::RESPONSE_HASH),
            format!("r.{}", crate::store::rollout::RESPONSE_HASH),
        )
    } else {
        (
            validity.sql("r"),
            format!(
                "CASE WHEN r.response IS NOT NULL THEN {} END",
                crate::store::rollout::response_hash_sql("r")
            ),
        )
    };
    let results = fill(
        RESULTS,
        &[
            ("verdict", &verdict),
            ("join", &join),
            ("valid", &valid),
            ("hash", &hash),
        ],
    );
    ctx.sql(&results).await?;
    let pass = format!("{pass_score:?}");
    ctx.sql(&fill(PROMPTS, &[("pass_score", &pass)])).await?;
    ctx.sql(INSTRUCTIONS).await?;
    if label.is_some() {
        let inline = format!("{PASS_SCORE:?}");
        ctx.sql(&fill(
            DISAGREEMENTS,
            &[("inline_pass", &inline), ("pass_score", &pass)],
        ))
        .await?;
    }
    Ok(())
}

/// Creates (or replaces) `candidates` over `results` and `selected_prompts`.
pub async fn register_candidates(ctx: &SessionContext) -> Result<()> {
    ctx.sql(CANDIDATES).await?;
    Ok(())
}

/// Creates (or replaces) `best` over `candidates`: those scoring at least
/// `pass_threshold`, ranked best first per prompt.
pub async fn register_best(ctx: &SessionContext, pass_threshold: f64) -> Result<()> {
    ctx.sql(&BEST.replace("{pass_threshold}", &format!("{pass_threshold:?}")))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Golden tests: a handful of input rows, the rows each view gives.

    use super::*;

    /// Three prompts: p1 with a pass, a fail, a truncated response that
    /// would pass, and a failed request; p2 with only a truncated response;
    /// p3 never sampled. A re-score `v2` flips p1's fail to a pass.
    async fn session() -> SessionContext {
        session_with("").await
    }

    /// [`session`] with more rollout rows (`, (…)` tuples).
    async fn session_with(more_rollouts: &str) -> SessionContext {
        let ctx = SessionContext::new();
        for f in crate::verifier::udf::udfs() {
            ctx.register_udf(f);
        }
        for sql in [
            "CREATE VIEW inputs AS SELECT *, false AS contaminated, \
               CAST(NULL AS VARCHAR) AS contaminated_by, CAST(NULL AS VARCHAR) AS contamination_ngram, \
               CAST(NULL AS VARCHAR) AS duplicate_of, CAST(NULL AS DOUBLE) AS duplicate_similarity \
             FROM (VALUES \
               ('p1', 'm1', '42', CAST(NULL AS VARCHAR), 0), \
               ('p2', 'm2', '7', CAST(NULL AS VARCHAR), 0), \
               ('p3', 'm3', '9', CAST(NULL AS VARCHAR), 0)) \
             AS t(id, messages, answer, metadata, shard)",
            "CREATE VIEW rollouts AS SELECT * FROM (VALUES \
               ('p1', 0, 0, 'a 42', NULL, 'stop', false, CAST(NULL AS VARCHAR), 10, 100, 5, 'm', 'e', 1, 1.0, '42'), \
               ('p1', 1, 0, 'a 41', NULL, 'stop', false, NULL, 10, 80, 5, 'm', 'e', 1, 0.0, '41'), \
               ('p1', 2, 0, 'a 42 trunc', NULL, 'length', true, NULL, 10, 512, 5, 'm', 'e', 1, 1.0, '42'), \
               ('p1', 3, 0, CAST(NULL AS VARCHAR), NULL, NULL, false, 'HTTP 500', 10, NULL, 5, 'm', 'e', 1, NULL, NULL), \
               ('p2', 0, 0, 'b 7 trunc', NULL, 'length', true, NULL, 10, 512, 5, 'm', 'e', 1, 1.0, '7'){more_rollouts}) \
             AS t(id, rollout_idx, step, response, reasoning, finish_reason, truncated, error, \
                  prompt_tokens, completion_tokens, latency_ms, model, endpoint, created_at, score, pred)",
            "CREATE VIEW scores AS SELECT * FROM (VALUES \
               ('p1', 0, 1.0, '42', 'v2'), ('p1', 1, 1.0, '41', 'v2'), \
               ('p1', 2, 1.0, '42', 'v2'), ('p2', 0, 1.0, '7', 'v2')) \
             AS t(id, rollout_idx, score, pred, verifier)",
        ] {
            ctx.sql(&sql.replace("{more_rollouts}", more_rollouts))
                .await
                .unwrap();
        }
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    async fn views(label: Option<&str>, drop_truncated: bool) -> (String, String) {
        let ctx = session().await;
        register(&ctx, label, Validity { drop_truncated }, PASS_SCORE, false)
            .await
            .unwrap();
        let results = rows(
            &ctx,
            "SELECT id, rollout_idx, valid, score, verifier FROM results ORDER BY id, rollout_idx",
        )
        .await;
        let prompts = rows(
            &ctx,
            "SELECT id, n_rollouts, n_valid, n_pass, pass_rate, n_truncated, n_errors \
             FROM prompts ORDER BY id",
        )
        .await;
        (results, prompts)
    }

    #[tokio::test]
    async fn results_and_prompts_drop_truncated_by_default() {
        let (results, prompts) = views(None, true).await;
        assert_eq!(
            results,
            "+----+-------------+-------+-------+----------+
| id | rollout_idx | valid | score | verifier |
+----+-------------+-------+-------+----------+
| p1 | 0           | true  | 1.0   | inline   |
| p1 | 1           | true  | 0.0   | inline   |
| p1 | 2           | false | 1.0   | inline   |
| p1 | 3           | false |       | inline   |
| p2 | 0           | false | 1.0   | inline   |
+----+-------------+-------+-------+----------+"
        );
        assert_eq!(
            prompts,
            "+----+------------+---------+--------+-----------+-------------+----------+
| id | n_rollouts | n_valid | n_pass | pass_rate | n_truncated | n_errors |
+----+------------+---------+--------+-----------+-------------+----------+
| p1 | 3          | 2       | 1      | 0.5       | 1           | 1        |
| p2 | 1          | 0       | 0      |           | 1           | 0        |
| p3 | 0          | 0       | 0      |           | 0           | 0        |
+----+------------+---------+--------+-----------+-------------+----------+"
        );
    }

    #[tokio::test]
    async fn truncated_responses_count_when_the_run_keeps_them() {
        let (_, prompts) = views(None, false).await;
        assert_eq!(
            prompts,
            "+----+------------+---------+--------+--------------------+-------------+----------+
| id | n_rollouts | n_valid | n_pass | pass_rate          | n_truncated | n_errors |
+----+------------+---------+--------+--------------------+-------------+----------+
| p1 | 3          | 3       | 2      | 0.6666666666666666 | 1           | 1        |
| p2 | 1          | 1       | 1      | 1.0                | 1           | 0        |
| p3 | 0          | 0       | 0      |                    | 0           | 0        |
+----+------------+---------+--------+--------------------+-------------+----------+"
        );
    }

    #[tokio::test]
    async fn disagreements_list_the_valid_rollouts_the_sources_split_on() {
        let ctx = session().await;
        register(&ctx, Some("v2"), Validity::default(), PASS_SCORE, false)
            .await
            .unwrap();
        // p1/1: the rules failed it, v2 passes it; p1/2 is truncated (not valid).
        assert_eq!(
            rows(
                &ctx,
                "SELECT id, rollout_idx, inline_score, score, side FROM disagreements"
            )
            .await,
            "+----+-------------+--------------+-------+------------+
| id | rollout_idx | inline_score | score | side       |
+----+-------------+--------------+-------+------------+
| p1 | 1           | 0.0          | 1.0   | label only |
+----+-------------+--------------+-------+------------+"
        );
        // A pass score of 0.5 (P(yes) from logprobs) reads the label alike.
        let ctx = session().await;
        register(&ctx, Some("v2"), Validity::default(), 0.5, false)
            .await
            .unwrap();
        assert_eq!(
            rows(&ctx, "SELECT count(*) AS n FROM disagreements").await,
            "+---+
| n |
+---+
| 1 |
+---+"
        );
        // Without a label there is nothing to disagree with.
        let ctx = session().await;
        register(&ctx, None, Validity::default(), PASS_SCORE, false)
            .await
            .unwrap();
        assert!(ctx.table("disagreements").await.is_err());
    }

    #[tokio::test]
    async fn a_scores_label_replaces_the_inline_verdicts() {
        let (results, prompts) = views(Some("v2"), true).await;
        assert_eq!(
            results,
            "+----+-------------+-------+-------+----------+
| id | rollout_idx | valid | score | verifier |
+----+-------------+-------+-------+----------+
| p1 | 0           | true  | 1.0   | v2       |
| p1 | 1           | true  | 1.0   | v2       |
| p1 | 2           | false | 1.0   | v2       |
| p1 | 3           | false |       | v2       |
| p2 | 0           | false | 1.0   | v2       |
+----+-------------+-------+-------+----------+"
        );
        assert!(
            prompts.contains("| p1 | 3          | 2       | 2      | 1.0       |"),
            "{prompts}"
        );
        let ctx = session().await;
        let bad = register(
            &ctx,
            Some("x'; DROP"),
            Validity::default(),
            PASS_SCORE,
            false,
        )
        .await;
        assert!(bad.unwrap_err().to_string().contains("directory name"));
    }

    #[tokio::test]
    async fn candidates_are_valid_scored_distinct_responses_of_selected_prompts() {
        // p1 gets a later copy of its passing response: collapsed into the
        // first. p2 has no valid response, p3 none at all.
        let ctx = session_with(
            ", ('p1', 4, 1, 'a 42', NULL, 'stop', false, NULL, 10, 90, 5, 'm', 'e', 1, 1.0, '42')",
        )
        .await;
        register(&ctx, None, Validity::default(), PASS_SCORE, false)
            .await
            .unwrap();
        ctx.sql("CREATE VIEW selected_prompts AS SELECT * FROM prompts WHERE pass_rate > 0.1")
            .await
            .unwrap();
        register_candidates(&ctx).await.unwrap();
        assert_eq!(
            rows(
                &ctx,
                "SELECT id, rollout_idx, score, pass_rate FROM candidates ORDER BY rollout_idx"
            )
            .await,
            "+----+-------------+-------+--------------------+
| id | rollout_idx | score | pass_rate          |
+----+-------------+-------+--------------------+
| p1 | 0           | 1.0   | 0.6666666666666666 |
| p1 | 1           | 0.0   | 0.6666666666666666 |
+----+-------------+-------+--------------------+"
        );
    }

    #[test]
    fn validity_in_sql_and_in_rust_agree() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for drop_truncated in [true, false] {
            let v = Validity { drop_truncated };
            for (has_response, error, truncated) in [
                (true, false, false),
                (true, false, true),
                (true, true, false),
                (false, false, false),
                (false, true, true),
            ] {
                let response = if has_response {
                    "'x'"
                } else {
                    "CAST(NULL AS VARCHAR)"
                };
                let err = if error {
                    "'e'"
                } else {
                    "CAST(NULL AS VARCHAR)"
                };
                let sql = format!(
                    "SELECT {} AS valid FROM (SELECT {response} AS response, {err} AS error, \
                     {truncated} AS truncated) r",
                    v.sql("r")
                );
                let out = rt.block_on(async {
                    let ctx = SessionContext::new();
                    rows(&ctx, &sql).await
                });
                let want = v.is_valid(has_response, error, truncated);
                assert!(
                    out.contains(&format!("| {want} ")),
                    "{drop_truncated} {sql}\n{out}"
                );
            }
        }
    }
}
