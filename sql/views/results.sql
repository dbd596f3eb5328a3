-- results: one row per saved rollout row, with the selected verdict.
--
-- Reads `rollouts` (aliased r) and, when a scores label is selected,
-- `scores`. rsr fills the placeholders before creating the view:
--   {{verdict}}  the score/pred columns and the verifier name: r.score,
--                r.pred, 'inline' for the verdicts written while sampling,
--                s.score, s.pred, '<label>' for those of scores/<label>/
--   {{join}}     nothing, or the LEFT JOIN of that label's scores (failed
--                rows get no verdict)
--   {{valid}}    the run's validity predicate over r: a response, no
--                error, and not truncated unless sampler.drop_truncated
--                is false (store::rollout::Validity); it tells a response
--                by r.response_hash when every part file has it, so
--                counting reads no text
--   {{hash}}     the stored r.response_hash, or the same hash computed
--                from the text for part files written without it
-- A row with an `error` is a failed request kept for audit: its rollout
-- was requested again under the same rollout_idx.
CREATE VIEW results AS
SELECT
  r.id, r.rollout_idx, r.step, r.response, r.reasoning, r.finish_reason,
  r.truncated, r.error, r.prompt_tokens, r.completion_tokens, r.latency_ms,
  r.model, r.endpoint, r.created_at,
  {{verdict}},
  {{valid}} AS valid,
  {{hash}} AS response_hash
FROM rollouts r
{{join}}
