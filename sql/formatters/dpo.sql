-- dpo: one preference pair per prompt.
--
-- chosen = the highest-scoring response with score >= $pass_threshold
-- (ties: fewest completion tokens, then lowest rollout_idx); rejected = the
-- lowest-scoring response with score <= $fail_threshold (ties: lowest
-- rollout_idx), at least $min_margin below the chosen one (0 unless
-- formatter.min_margin is set: with rewards, pass_threshold -1e9 and
-- fail_threshold 1e9 make it the highest versus the lowest reward). Prompts
-- without both are left out. Reads `best` (the chosen one is its rank 1)
-- and `candidates`.
-- Early stop: satisfied by one pass and one fail.
WITH chosen AS (
  SELECT * FROM best WHERE rank = 1
),
rejected AS (
  SELECT * FROM (
    SELECT *, row_number() OVER (
      PARTITION BY id
      ORDER BY score ASC, rollout_idx ASC
    ) AS rank
    FROM candidates
    WHERE score <= $fail_threshold
  ) WHERE rank = 1
)
SELECT c.id, c.messages,
       c.response AS chosen, c.reasoning AS chosen_reasoning, c.score AS chosen_score,
       c.rollout_idx AS chosen_rollout_idx,
       r.response AS rejected, r.reasoning AS rejected_reasoning, r.score AS rejected_score,
       r.rollout_idx AS rejected_rollout_idx
FROM chosen c JOIN rejected r ON c.id = r.id
WHERE c.rollout_idx <> r.rollout_idx AND c.score - r.score >= $min_margin
ORDER BY c.id
