-- multi_sft: every distinct passing response per prompt (at most $k), in
-- the order they were sampled.
--
-- Reads `candidates`.
-- Early stop: satisfied by k valid rollouts with score >= pass_threshold.
SELECT id, messages, response, reasoning, score, rollout_idx
FROM (
  SELECT *, row_number() OVER (PARTITION BY id ORDER BY rollout_idx ASC) AS rank
  FROM candidates
  WHERE score >= $pass_threshold
)
WHERE rank <= $k
ORDER BY id, rank
