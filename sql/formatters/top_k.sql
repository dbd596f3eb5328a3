-- top_k: up to $k distinct passing responses per prompt, best first.
--
-- Reads `best` (the candidates with score >= $pass_threshold, ranked:
-- highest score, then fewest completion tokens, then lowest rollout_idx).
-- Early stop: satisfied by k valid rollouts with score >= pass_threshold.
SELECT id, messages, response, reasoning, score, rollout_idx
FROM best
WHERE rank <= $k
ORDER BY id, rank
