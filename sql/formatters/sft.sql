-- sft: the best passing response of each prompt.
--
-- Reads `candidates` (valid rollouts of the prompts that pass this
-- formatter's filters, exact duplicate responses collapsed) and the bound
-- parameter $pass_threshold. Best = highest score, then fewest completion
-- tokens, then lowest rollout_idx.
-- Early stop: satisfied by one valid rollout with score >= pass_threshold.
SELECT id, messages, response, reasoning, score, rollout_idx
FROM (
  SELECT *, row_number() OVER (
    PARTITION BY id
    ORDER BY score DESC, completion_tokens ASC NULLS LAST, rollout_idx ASC
  ) AS rank
  FROM candidates
  WHERE score >= $pass_threshold
)
WHERE rank = 1
ORDER BY id
