-- APPS / TACO (codeparrot/apps, BAAI/TACO): columns `problem_id`,
-- `question`, `input_output` (JSON text: inputs, outputs, and fn_name for
-- call-based problems), `starter_code` and `difficulty`.
--
-- id:       apps-<problem_id>
-- messages: the question (and its starter code, when it has one) as one
--           user message, asking for one fenced Python block that reads
--           standard input (or completes the starter code)
-- answer:   input_output as it is: the tests code-rlvr runs
-- metadata: difficulty
SELECT
  'apps-' || CAST(problem_id AS VARCHAR) AS id,
  [named_struct(
    'role', 'user',
    'content', question || chr(10) || chr(10)
      || CASE
           WHEN starter_code IS NULL OR trim(starter_code) = ''
             THEN 'Write a Python program that reads the input from standard input and '
               || 'writes the answer to standard output. Answer with one ```python code block.'
           ELSE 'Complete this starter code. Answer with one ```python code block.'
               || chr(10) || chr(10) || '```python' || chr(10) || starter_code || chr(10) || '```'
         END
  )] AS messages,
  input_output AS answer,
  named_struct('difficulty', difficulty) AS metadata
FROM raw
WHERE input_output IS NOT NULL AND input_output <> ''
