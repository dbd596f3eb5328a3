-- Multiple choice in the MMLU shape: `question`, `choices` (a list of option
-- texts), `answer` (0-based index of the correct option), optional `subject`.
--
-- id:       mcq-0, mcq-1, ... in file order
-- messages: the question and its options lettered A, B, C, ... (format_choices)
-- answer:   the gold letter (0 -> A)
-- metadata: the options and the subject, for option-text matching
--
-- For data sets whose gold is already a letter, use `answer` as it is.
SELECT
  'mcq-' || CAST(row_number() OVER () - 1 AS VARCHAR) AS id,
  [named_struct(
    'role', 'user',
    'content', question || chr(10) || chr(10) || format_choices(choices) || chr(10) || chr(10)
      || 'Answer with the letter of the correct option, as \boxed{X}.'
  )] AS messages,
  chr(65 + CAST(answer AS BIGINT)) AS answer,
  named_struct('choices', choices, 'subject', subject) AS metadata
FROM raw
