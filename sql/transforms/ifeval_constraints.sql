-- Instruction-following data from any chat prompt set (`id` and
-- `messages`; for a `prompt` column, pass `prompt` instead): 1 to 3 IFEval
-- instructions attached to every prompt, drawn from the 25 ids with
-- sensible kwargs, never two that contradict each other, reproducibly from
-- the prompt's id and a seed. Copy this file and change the `3` (most
-- instructions per prompt) or the `0` (seed) to draw others.
--
-- id:       as in the input
-- messages: the last user turn with the instructions' text appended, as
--           the only turn (add a system prompt with data.system_prompt)
-- answer:   {instruction_id_list, kwargs}, what the ifeval verifier checks
SELECT
  id,
  [named_struct('role', 'user', 'content', get_field(c, 'prompt'))] AS messages,
  named_struct('answer', get_field(c, 'gold')) AS metadata
FROM (
  SELECT id, ifeval_constraints(messages, id, 3, 0) AS c
  FROM raw
)
