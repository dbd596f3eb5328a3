-- best: the passing candidates of each prompt, best first, for one
-- formatter: `rank` 1 is the prompt's best response. Best = highest score,
-- then fewest completion tokens, then lowest rollout_idx.
--
-- Reads `candidates`; `{pass_threshold}` is the formatter's pass threshold
-- (a number written in by rsr). The one ranking `sft`, `top_k` and `dpo`'s
-- chosen response share.
CREATE OR REPLACE VIEW best AS
SELECT *, row_number() OVER (
  PARTITION BY id
  ORDER BY score DESC, completion_tokens ASC NULLS LAST, rollout_idx ASC
) AS rank
FROM candidates
WHERE score >= {pass_threshold}
