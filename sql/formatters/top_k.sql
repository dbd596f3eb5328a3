-- top_k: up to $k distinct passing responses per prompt, best first.
--
-- Best = highest score, then fewest completion tokens, then lowest
-- rollout_idx. Reads `candidates`.
-- Early stop: satisfied by k valid rollouts with score >= pass_threshold.
SELECT id, messages, response, reasoning, score, rollout_idx
FROM (
  SELECT *, row_number() OVER (
    PARTITION BY id
    ORDER BY score DESC, completion_tokens ASC NULLS LAST, rollout_idx ASC
  ) AS rank
  FROM candidates
  WHERE score >= $pass_threshold
)
WHERE rank <= $k
ORDER BY id, rank
