-- IFEval (Google's input_data.jsonl, or google/IFEval on the Hub): columns
-- `key`, `prompt`, `instruction_id_list`, `kwargs` (one object per
-- instruction; the Hub's rows give every key, null where unused).
--
-- id:       ifeval-<key>
-- messages: the prompt as one user message, as it is
-- answer:   {instruction_id_list, kwargs}, what the ifeval verifier checks
--           (null kwargs dropped when prepare reads it)
SELECT
  'ifeval-' || CAST(key AS VARCHAR) AS id,
  [named_struct('role', 'user', 'content', prompt)] AS messages,
  named_struct(
    'answer', named_struct('instruction_id_list', instruction_id_list, 'kwargs', kwargs)
  ) AS metadata
FROM raw
