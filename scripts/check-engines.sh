#!/usr/bin/env bash
# A work dir read by other engines: DuckDB and Spark (pyspark in local
# mode, Java from the machine) count the same prompts and rollouts as
# `rsr sql` for a pass-rate filter, reading the Parquet files directly.
#
#   bash scripts/check-engines.sh
#
# Samples the bundled GSM8K example from rsr-mock (seeded, 30% of the
# answers right, so pass rates spread from 0 up), then runs one query in the three
# engines (scripts/engines.py holds the DuckDB and Spark versions, as
# docs/scale.md shows them) and fails when a count differs. DuckDB and
# pyspark are installed into a venv (ENGINES_VENV, default
# ~/.cache/rsr-engines-venv); Spark needs Java 17 (`java` on PATH: Debian's
# openjdk-17-jre-headless). Prints the unsigned columns' types as Spark
# reads them.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${ENGINES_VENV:-$HOME/.cache/rsr-engines-venv}"
if ! "$venv/bin/python" -c "import duckdb, pyspark" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb==1.1.3 pyspark==3.5.3
fi
if ! command -v java >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q openjdk-17-jre-headless >/dev/null
  else
    echo "check-engines: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)" >&2
    exit 1
  fi
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rsr-target}"
cargo build --quiet --bins
bin="$CARGO_TARGET_DIR/debug"
work=$(mktemp -d)
mock=
cleanup() { [ -n "$mock" ] && kill "$mock" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

input=examples/data/gsm8k_50.jsonl
"$bin/rsr" -q prepare "data.input_path=$input" data.preprocess.transform=gsm8k "work_dir=$work/gold"
"$bin/rsr-mock" --port 0 --gold "$work/gold/data/input.parquet" --accuracy 0.3 > "$work/mock.out" &
mock=$!
until grep -q listening "$work/mock.out" 2>/dev/null; do sleep 0.05; done
url="$(sed -n 's/^listening on //p' "$work/mock.out")/v1"
"$bin/rsr" -q sample "data.input_path=$input" data.preprocess.transform=gsm8k "work_dir=$work/run" \
  sampler.model=mock "sampler.base_url=$url" sampler.seed=3 shard.size=10 \
  sampling.max_rollouts=8 sampling.early_stop=false

rsr_counts=$("$bin/rsr" sql "$work/run" \
  "SELECT (SELECT count(*) FROM prompts WHERE pass_rate > 0 AND pass_rate < 1) AS mixed,
          (SELECT count(*) FROM prompts WHERE pass_rate = 0) AS never,
          (SELECT count(*) FROM results WHERE valid) AS valid_rollouts" --format csv | tail -1)
echo "rsr sql: mixed,never,valid_rollouts = $rsr_counts"
# Spark on loopback only.
SPARK_LOCAL_IP=127.0.0.1 "$venv/bin/python" scripts/engines.py "$work/run" "$rsr_counts"
