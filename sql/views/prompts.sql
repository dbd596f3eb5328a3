-- prompts: one row per input, with its rollout counts and pass rate.
--
-- Reads `inputs` and the `results` view. Counts are aggregated per id
-- first and then joined to the inputs, so the group keys stay small
-- whatever the size of the prompts. rsr fills {{pass_score}}: a valid
-- rollout passes when its score is at least this (store::rollout::PASS_SCORE).
--   n_rollouts  finished rollouts (failed requests' rows excluded)
--   n_valid     valid rollouts; n_pass: valid and passing
--   pass_rate   n_pass / n_valid (null without a valid rollout)
--   n_errors    rows of failed requests
--   contaminated, contaminated_by, contamination_ngram, duplicate_of,
--   duplicate_similarity: the hygiene flags of `inputs` (data.decontaminate,
--               data.dedup)
CREATE VIEW prompts AS
SELECT
  i.id, i.messages, i.answer, i.metadata, i.shard,
  i.contaminated, i.contaminated_by, i.contamination_ngram,
  i.duplicate_of, i.duplicate_similarity,
  COALESCE(a.n_rollouts, 0) AS n_rollouts,
  COALESCE(a.n_valid, 0) AS n_valid,
  COALESCE(a.n_pass, 0) AS n_pass,
  CAST(a.n_pass AS DOUBLE) / CAST(NULLIF(a.n_valid, 0) AS DOUBLE) AS pass_rate,
  a.mean_score,
  COALESCE(a.n_truncated, 0) AS n_truncated,
  COALESCE(a.n_errors, 0) AS n_errors,
  a.mean_completion_tokens, a.max_completion_tokens, a.total_completion_tokens
FROM inputs i
LEFT JOIN (
  SELECT
    r.id,
    sum(CASE WHEN r.error IS NULL THEN 1 ELSE 0 END) AS n_rollouts,
    sum(CASE WHEN r.valid THEN 1 ELSE 0 END) AS n_valid,
    sum(CASE WHEN r.valid AND r.score >= {{pass_score}} THEN 1 ELSE 0 END) AS n_pass,
    avg(CASE WHEN r.valid THEN r.score END) AS mean_score,
    sum(CASE WHEN r.truncated THEN 1 ELSE 0 END) AS n_truncated,
    sum(CASE WHEN r.error IS NOT NULL THEN 1 ELSE 0 END) AS n_errors,
    avg(r.completion_tokens) AS mean_completion_tokens,
    max(r.completion_tokens) AS max_completion_tokens,
    sum(r.completion_tokens) AS total_completion_tokens
  FROM results r
  GROUP BY r.id
) a ON i.id = a.id
