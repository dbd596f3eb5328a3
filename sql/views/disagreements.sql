-- disagreements: valid rollouts on which the inline verdict (written while
-- sampling) and the selected scores label disagree about pass or fail.
--
-- Created only when a scores label is selected (`--scores LABEL`). Reads
-- `results` (the label's verdicts) and `rollouts` (the inline ones). rsr
-- fills {{inline_pass}} (the inline verdicts' pass score) and {{pass_score}}
-- (the label's: 0.5 for P(yes) from logprobs, 0 for rewards, else 1).
--   side  'inline only' (the rules pass it, the label fails it) or
--         'label only' (the label passes it, the rules fail it)
-- For a model verifier, join `scores` on (id, rollout_idx) for the judge's
-- raw answer (`judge_raw`) and `outcome`.
CREATE VIEW disagreements AS
SELECT
  r.id, r.rollout_idx,
  ro.score AS inline_score, ro.pred AS inline_pred,
  r.score, r.pred, r.verifier,
  CASE WHEN ro.score >= {{inline_pass}} THEN 'inline only' ELSE 'label only' END AS side,
  r.response
FROM results r
JOIN rollouts ro
  ON r.id = ro.id AND r.rollout_idx = ro.rollout_idx AND ro.error IS NULL
WHERE r.valid AND r.score IS NOT NULL AND ro.score IS NOT NULL
  AND (ro.score >= {{inline_pass}}) <> (r.score >= {{pass_score}})
