-- HumanEval (openai/human-eval's HumanEval.jsonl, or openai_humaneval on the
-- Hub): columns `task_id`, `prompt`, `canonical_solution`, `test`,
-- `entry_point`.
--
-- id:       task_id
-- messages: the function's signature and docstring as one user message,
--           asking for the whole function in one fenced Python block
-- metadata: answer = {prompt, test, entry_point}, the tests code-rlvr runs
--           (`check(entry_point)` after the program, the prompt's imports
--           first); canonical_solution (never shown to the model; rsr-mock
--           answers with it)
SELECT
  task_id AS id,
  [named_struct(
    'role', 'user',
    'content', 'Complete this Python function. Answer with the whole function, '
      || 'its imports included, in one ```python code block.'
      || chr(10) || chr(10) || '```python' || chr(10) || prompt || '```'
  )] AS messages,
  named_struct(
    'answer', named_struct('prompt', prompt, 'test', test, 'entry_point', entry_point),
    'canonical_solution', canonical_solution
  ) AS metadata
FROM raw
