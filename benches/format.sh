#!/usr/bin/env bash
# Re-filtering and exporting a saved run: `rsr format` and `rsr export` on
# P prompts × 8 rollouts sampled from rsr-mock (latency 0; the mock knows
# the gold answers, so per-prompt pass rates spread over [0, 1]; thinking
# drawn from a few hundred words, so Parquet sizes are like prose).
#
#   bash benches/format.sh        # the three cases below
#   CASES="50000:120:inline" bash benches/format.sh
#
# A case is PROMPTS:WORDS:REASONING — WORDS of thinking per response, inline
# (<think>…</think> in the response) or field (reasoning_content, saved in
# the `reasoning` column). Defaults: 12,500 and 125,000 prompts with 120
# inline words (100k and 1M rollouts), and 31,250 prompts with 700 words of
# separate reasoning (250k rollouts).
#
# For each case: prepare, start the mock with the prepared gold, sample once
# (not timed here; see benches/sampler.sh), print the pass-rate spread and
# the size of rollout/, then time (wall clock, peak RSS via /usr/bin/time):
#   1. format: the SFT formatter with max_pass_rate=0.5 (hard prompts only)
#      into train/sft.jsonl (TRL messages rows)
#   2. export: the same formatter as ShareGPT with think tags
#   3. analyze: stats, charts and report
# and, when `pip install duckdb` is there, the same SFT query written by
# hand in DuckDB (benches/peer_duckdb.py) over the same files, with the
# rows of both compared (the messages of every row, not only the counts).
# Results go to stdout as Markdown rows (docs/benchmarks.md).
source "$(dirname "$0")/common.sh"
needs_time

measure() { # label rows -- command...
  local label=$1 rows=$2; shift 3
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"
  awk -v l="$label" -v r="$rows" -v s="$secs" -v k="$kb" 'BEGIN {
    printf "| %s | %d | %.2f | %.0f | %.0f |\n", l, r, s, (s > 0 ? r/s : 0), k/1024 }'
}

echo "| step | rollouts | seconds | rollouts/s | peak RSS MiB |"
echo "|---|---|---|---|---|"
for case in ${CASES:-12500:120:inline 125000:120:inline 31250:700:field}; do
  IFS=: read -r p words reasoning <<< "$case"
  awk -v n="$p" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"id\":\"p%d\",\"messages\":[{\"role\":\"user\",\"content\":\"What is %d plus 0?\"}],\"answer\":\"%d\"}\n", i, i, i }' \
    > "$work/in.jsonl"
  wd="$work/run$p"
  policy=(sampler.model=mock sampling.max_rollouts=8 sampling.step_size=8 sampling.max_steps=1
    sampling.early_stop=false)
  "$dir/rsr" -q prepare "data.input_path=$work/in.jsonl" "work_dir=$wd" "${policy[@]}"
  start_mock --words "$words" --reasoning "$reasoning" --gold "$wd/data/input.parquet"
  "$dir/rsr" -q sample "work_dir=$wd" "sampler.base_url=$url" "${policy[@]}" \
    sampler.concurrent_requests=256 sampling.concurrent_prompts=256
  stop_mock
  "$dir/rsr" -q sql "$wd" "SELECT round(pass_rate, 1) AS pass_rate, count(*) AS prompts FROM prompts GROUP BY 1 ORDER BY 1" --format csv | tr '\n' ' ' >&2
  echo "| $words words, $reasoning: rollout/ on disk: $(du -sh "$wd/rollout" | cut -f1)" >&2
  rows=$((p * 8))
  measure "format sft, max_pass_rate=0.5" "$rows" -- "$dir/rsr" format "$wd" formatter.0.max_pass_rate=0.5
  if python3 -c 'import duckdb' 2>/dev/null; then
    # The tool a user would pick instead: the same query by hand in DuckDB.
    measure "DuckDB 2 threads, same query by hand" "$rows" -- python3 benches/peer_duckdb.py "$wd" "$work/duck.jsonl" 2
    echo "| rows: rsr $(wc -l < "$wd/train/sft.jsonl"), DuckDB $(wc -l < "$work/duck.jsonl"), \
$(python3 -c 'import json, sys
key = lambda l: json.dumps(json.loads(l)["messages"], sort_keys=True)
a, b = ({key(l) for l in open(f)} for f in sys.argv[1:])
print(f"identical: {len(a & b)}, only rsr: {len(a - b)}, only DuckDB: {len(b - a)}")' "$wd/train/sft.jsonl" "$work/duck.jsonl")" >&2
  fi
  measure "export sharegpt, think tags" "$rows" -- "$dir/rsr" export "$wd" --format sharegpt --reasoning think-tags -o "$work/out.jsonl"
  measure "analyze" "$rows" -- "$dir/rsr" analyze "$wd"
  rm -rf "$wd"
done
