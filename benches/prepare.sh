#!/usr/bin/env bash
# Throughput and peak memory of `rsr prepare`, on GSM8K-shaped prompts.
#
#   bash benches/prepare.sh              # 100,000 and 1,000,000 rows
#   bash benches/prepare.sh 50000        # other sizes
#
# For each size it builds a JSONL file by repeating examples/data/gsm8k_50.jsonl,
# then times (wall clock, peak RSS via /usr/bin/time):
#   1. jsonl+transform: JSONL input through sql/transforms/gsm8k.sql
#   2. parquet:         the prepared rows (id, messages, answer) as a Parquet
#                       input, no transform
# Results go to stdout as a Markdown table (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 1; }
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/rsr"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)

measure() { # label rows input-bytes -- command...
  local label=$1 rows=$2 bytes=$3; shift 4
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"
  awk -v l="$label" -v r="$rows" -v b="$bytes" -v s="$secs" -v k="$kb" 'BEGIN {
    printf "| %s | %d | %.0f | %.2f | %.0f | %.0f |\n", l, r, b/1048576, s, (s > 0 ? r/s : 0), k/1024 }'
}

echo "| case | rows | input MiB | seconds | rows/s | peak RSS MiB |"
echo "|---|---|---|---|---|---|"
for rows in "${sizes[@]}"; do
  jsonl="$work/gsm8k_$rows.jsonl"
  awk -v n="$rows" '{ line[NR] = $0 } END { for (i = 0; i < n; i++) print line[i % NR + 1] }' \
    examples/data/gsm8k_50.jsonl > "$jsonl"
  measure jsonl+transform "$rows" "$(stat -c %s "$jsonl")" -- \
    "$bin" -q prepare "data.input_path=$jsonl" data.preprocess.transform=gsm8k "work_dir=$work/a_$rows"
  "$bin" -q sql "$work/a_$rows" "SELECT id, messages, answer FROM inputs" -o "$work/in_$rows.parquet"
  measure parquet "$rows" "$(stat -c %s "$work/in_$rows.parquet")" -- \
    "$bin" -q prepare "data.input_path=$work/in_$rows.parquet" "work_dir=$work/b_$rows"
  rm -rf "$work/a_$rows" "$work/b_$rows" "$jsonl" "$work/in_$rows.parquet"
done
