-- sft: the best passing response of each prompt: the top-1 case of top_k.
--
-- Reads `best` (the candidates with score >= $pass_threshold of the
-- prompts that pass this formatter's filters, exact duplicate responses
-- collapsed, ranked: highest score, then fewest completion tokens, then
-- lowest rollout_idx).
-- Early stop: satisfied by one valid rollout with score >= pass_threshold.
SELECT id, messages, response, reasoning, score, rollout_idx
FROM best
WHERE rank = 1
ORDER BY id
