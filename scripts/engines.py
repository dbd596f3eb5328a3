"""The pass-rate counts of a work dir in DuckDB and in Spark, compared with
rsr's: scripts/check-engines.sh runs it; docs/scale.md shows the queries.

    python scripts/engines.py WORK_DIR MIXED,NEVER,VALID
"""

import sys

# A valid rollout: a response, no error, not cut at max_tokens (the run's
# default validity, sampler.drop_truncated: true). It passes with score >= 1.
PASS_RATES = """
SELECT id,
       avg(CASE WHEN score >= 1 THEN 1.0 ELSE 0.0 END) AS pass_rate,
       count(*) AS n_valid
FROM rollouts
WHERE error IS NULL AND response IS NOT NULL AND NOT truncated
GROUP BY id
"""

COUNTS = """
SELECT sum(CASE WHEN pass_rate > 0 AND pass_rate < 1 THEN 1 ELSE 0 END) AS mixed,
       sum(CASE WHEN pass_rate = 0 THEN 1 ELSE 0 END) AS never,
       sum(n_valid) AS valid_rollouts
FROM pass_rates
"""


def duckdb_counts(work_dir):
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW rollouts AS SELECT * FROM read_parquet('{work_dir}/rollout/*/*.parquet', union_by_name = true)"
    )
    con.execute(f"CREATE VIEW pass_rates AS {PASS_RATES}")
    return tuple(int(v) for v in con.execute(COUNTS).fetchone())


def spark_counts(work_dir):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("rsr-work-dir")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    # mergeSchema: part files written before a column was added lack it.
    df = spark.read.option("mergeSchema", "true").parquet(f"{work_dir}/rollout/*/*.parquet")
    unsigned = {f.name: f.dataType.simpleString() for f in df.schema.fields
                if f.name in ("rollout_idx", "step", "prompt_tokens", "completion_tokens",
                              "latency_ms", "response_hash")}
    print(f"spark reads the unsigned columns as: {unsigned}")
    df.createOrReplaceTempView("rollouts")
    spark.sql(PASS_RATES).createOrReplaceTempView("pass_rates")
    row = spark.sql(COUNTS).collect()[0]
    spark.stop()
    return tuple(int(v) for v in row)


def main():
    work_dir, expected = sys.argv[1], tuple(int(v) for v in sys.argv[2].split(","))
    failed = False
    for name, counts in (("duckdb", duckdb_counts), ("spark", spark_counts)):
        got = counts(work_dir)
        same = got == expected
        failed |= not same
        print(f"{name}: mixed,never,valid_rollouts = {','.join(map(str, got))}"
              f" ({'the same as rsr sql' if same else 'DIFFERENT from rsr sql'})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
