-- instructions: one row per instruction of every rollout an `ifeval`
-- verifier scored (its `pred`: `id=followed|loose|failed` per instruction,
-- in gold order), with the selected verdicts of `results`.
--
--   id, rollout_idx, valid   the rollout, as in `results`
--   instruction_id           e.g. punctuation:no_comma
--   followed_strict          followed by the response as it is
--   followed_loose           followed by it or one of IFEval's loose variants
--
-- IFEval's numbers over valid rollouts:
--   prompt-level strict = share of rollouts with every instruction followed_strict
--   instruction-level strict = share of instruction rows followed_strict
CREATE VIEW instructions AS
SELECT
  id, rollout_idx, valid,
  split_part(item, '=', 1) AS instruction_id,
  split_part(item, '=', 2) = 'followed' AS followed_strict,
  split_part(item, '=', 2) <> 'failed' AS followed_loose
FROM (
  SELECT id, rollout_idx, valid, unnest(string_to_array(pred, ' ')) AS item
  FROM results
  WHERE error IS NULL
    AND regexp_like(pred, '^[a-z_]+:[a-z_]+=(followed|loose|failed)( [a-z_]+:[a-z_]+=(followed|loose|failed))*$')
)
