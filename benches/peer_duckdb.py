"""The SFT re-filter a user would write by hand in DuckDB, beside
`rsr format WORK_DIR formatter.0.max_pass_rate=0.5` in benches/format.sh.

    pip install duckdb
    python3 benches/peer_duckdb.py WORK_DIR OUT.jsonl [THREADS]

Reads the same saved Parquet files (rollout/**/*.parquet, data/input.parquet)
and writes the same rows: for each prompt whose pass rate over valid rollouts
(a response, no error, not truncated) is at most 0.5, its best passing
response (highest score, then fewest completion tokens, then lowest
rollout_idx), as TRL `messages` JSON Lines, a separate `reasoning` put
before the answer in think tags. Prints the row count.
"""
import sys

import duckdb

work_dir, out = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2

con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute(
    f"""
COPY (
  WITH r AS (
    SELECT *, error IS NULL AND response IS NOT NULL AND NOT truncated AS valid
    FROM read_parquet('{work_dir}/rollout/*/*.parquet')
  ),
  p AS (
    SELECT id, sum(valid::INT) AS n_valid, sum((valid AND score >= 1)::INT) AS n_pass
    FROM r GROUP BY id
  ),
  selected AS (SELECT id FROM p WHERE n_valid > 0 AND n_pass / n_valid <= 0.5),
  best AS (
    SELECT r.id,
      CASE WHEN trim(coalesce(r.reasoning, '')) = '' THEN r.response
        ELSE '<think>' || chr(10) || trim(r.reasoning) || chr(10) || '</think>' || chr(10) || chr(10)
          || trim(r.response)
      END AS content,
      row_number() OVER (
        PARTITION BY r.id
        ORDER BY r.score DESC, r.completion_tokens ASC NULLS LAST, r.rollout_idx
      ) AS rank
    FROM r JOIN selected USING (id)
    WHERE r.valid AND r.score >= 1
  )
  SELECT list_append(
      from_json(i.messages, '[{{"role": "VARCHAR", "content": "VARCHAR"}}]'),
      {{'role': 'assistant', 'content': b.content}}
    ) AS messages
  FROM best b JOIN read_parquet('{work_dir}/data/input.parquet') i USING (id)
  WHERE b.rank = 1
  ORDER BY i.id
) TO '{out}' (FORMAT JSON)
"""
)
rows = sum(1 for _ in open(out))
print(rows)
