-- HuggingFaceH4/ultrafeedback_binarized (train_prefs / test_prefs) ->
-- rsr's prompts: the prompt as one user turn, id from prompt_id.
SELECT
  prompt_id AS id,
  [named_struct('role', 'user', 'content', prompt)] AS messages
FROM raw
