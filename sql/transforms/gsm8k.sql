-- GSM8K (openai/grade-school-math test.jsonl, or the openai/gsm8k Parquet files):
-- columns `question` and `answer`, where `answer` is a worked solution ending
-- in `#### <number>`.
--
-- id:       gsm8k-0, gsm8k-1, ... in file order
-- messages: the question as one user message, asking for a boxed final answer
-- answer:   the text after `####`, thousands separators removed (`1,000` -> `1000`)
-- metadata: the worked solution
SELECT
  'gsm8k-' || CAST(row_number() OVER () - 1 AS VARCHAR) AS id,
  [named_struct(
    'role', 'user',
    'content', question || chr(10) || chr(10)
      || 'Please reason step by step, and put your final answer within \boxed{}.'
  )] AS messages,
  replace(trim(split_part(answer, '####', 2)), ',', '') AS answer,
  named_struct('solution', answer) AS metadata
FROM raw
