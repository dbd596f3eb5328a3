-- candidates: what a formatter picks from, for one formatter.
--
-- Reads `results` and `selected_prompts` (the `prompts` that pass the
-- formatter's min_pass_rate, max_pass_rate and `where` filters). One row
-- per distinct response of a prompt (duplicates — the same thinking and
-- response up to case and spacing, by response_hash — collapsed, keeping
-- the best-scored, then the lowest rollout_idx), valid and scored only,
-- with the prompt's messages, pass_rate and n_valid.
--
-- The rollout kept of each group of duplicates is chosen by an aggregate
-- over narrow columns (a hash table of (id, response_hash)), then joined
-- back: no sort or per-group window state ever carries the text.
CREATE OR REPLACE VIEW candidates AS
SELECT r.*, p.messages, p.pass_rate, p.n_valid
FROM results r
JOIN (
  SELECT d.id, first_value(d.rollout_idx ORDER BY d.score DESC, d.rollout_idx ASC) AS kept_idx
  FROM results d
  JOIN selected_prompts s ON d.id = s.id
  WHERE d.valid AND d.score IS NOT NULL
  GROUP BY d.id, d.response_hash
) k ON r.id = k.id AND r.rollout_idx = k.kept_idx
JOIN selected_prompts p ON r.id = p.id
