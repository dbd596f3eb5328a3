-- dpo_all_pairs: every (passing, failing) pair of a prompt, at most $k pairs
-- per prompt (k null: all), for DPO with several pairs per prompt.
--
--   rsr format WORK_DIR formatter.0.type=examples/formatters/dpo_all_pairs.sql formatter.0.k=4
--
-- Reads `candidates` (valid, scored, distinct responses of the prompts that
-- pass the formatter's filters). Pairs are ordered by the chosen response's
-- rollout_idx, then the rejected one's.
SELECT id, messages, chosen, chosen_reasoning, rejected, rejected_reasoning
FROM (
  SELECT c.id, c.messages,
         c.response AS chosen, c.reasoning AS chosen_reasoning,
         r.response AS rejected, r.reasoning AS rejected_reasoning,
         row_number() OVER (PARTITION BY c.id ORDER BY c.rollout_idx, r.rollout_idx) AS pair
  FROM candidates c JOIN candidates r ON c.id = r.id
  WHERE c.score >= $pass_threshold AND r.score <= $fail_threshold
)
WHERE pair <= $k
ORDER BY id, pair
