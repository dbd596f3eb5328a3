-- candidates: what a formatter picks from, for one formatter.
--
-- Reads `results` and `selected_prompts` (the `prompts` that pass the
-- formatter's min_pass_rate, max_pass_rate and `where` filters). One row
-- per distinct response of a prompt (duplicates — the same thinking and
-- response up to case and spacing, by response_hash — collapsed, keeping
-- the best-scored, then the lowest rollout_idx), valid and scored only,
-- with the prompt's messages, pass_rate and n_valid.
CREATE OR REPLACE VIEW candidates AS
SELECT * FROM (
  SELECT
    r.*, p.messages, p.pass_rate, p.n_valid,
    row_number() OVER (
      PARTITION BY r.id, r.response_hash
      ORDER BY r.score DESC, r.rollout_idx ASC
    ) AS dup_rank
  FROM results r
  JOIN selected_prompts p ON r.id = p.id
  WHERE r.valid AND r.score IS NOT NULL
)
WHERE dup_rank = 1
