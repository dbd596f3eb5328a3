-- MATH-500 (the PRM800K test subset of MATH): columns `problem`, `solution`,
-- `answer` (LaTeX), `subject`, `level`, `unique_id`.
--
-- id:       unique_id (test/precalculus/807.json)
-- messages: the problem as one user message, asking for a boxed final answer
-- answer:   the LaTeX gold answer as written by the data set's authors
-- metadata: subject, level and the reference solution
SELECT
  unique_id AS id,
  [named_struct(
    'role', 'user',
    'content', problem || chr(10) || chr(10)
      || 'Please reason step by step, and put your final answer within \boxed{}.'
  )] AS messages,
  answer,
  named_struct('subject', subject, 'level', level, 'solution', solution) AS metadata
FROM raw
