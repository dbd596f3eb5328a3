#!/usr/bin/env bash
# How fast `rsr view` answers its pages on a large run.
#
#   bash benches/view.sh                   # P = 125,000 prompts × 8 = 1M rollouts
#   P=12500 bash benches/view.sh
#
# Samples P prompts × 8 rollouts from rsr-mock (gold known, so pass rates
# spread; 120 words of thinking), re-scores them once more (`rsr verify
# verifier.type=numeric verifier.options.tolerance=1 verifier.label=v2`: the
# mock's wrong answers are off by one, so about half the rollouts get two
# disagreeing verdicts), starts `rsr view` and times its start (it computes
# the prompt list — counts, pass rates, disagreement flags over every
# rollout — before printing its address), then each JSON request with curl:
# the first page of the prompt list, the same page again, a deep page
# sorted by pass rate, a filtered page (pass-rate range and a SQL
# condition), one prompt, the first page of disagreements and of
# responses without an answer; then the viewer's peak RSS. When `pip
# install duckdb` is there, the first page computed by DuckDB over the same
# files (2 threads) for comparison. Results go to stdout as Markdown rows
# (docs/benchmarks.md).
source "$(dirname "$0")/common.sh"

p=${P:-125000}
prompts "$p" "$work/in.jsonl"
wd="$work/run"
policy=(sampler.model=mock sampling.max_rollouts=8 sampling.step_size=8 sampling.max_steps=1 sampling.early_stop=false)
"$dir/rsr" -q prepare "data.input_path=$work/in.jsonl" "work_dir=$wd" "${policy[@]}"
"$dir/rsr-mock" --port 0 --words 120 --gold "$wd/data/input.parquet" > "$work/mock.out" &
pids+=($!)
until grep -q listening "$work/mock.out" 2> /dev/null; do sleep 0.05; done
url="$(sed -n 's/^listening on //p' "$work/mock.out")/v1"
"$dir/rsr" -q sample "work_dir=$wd" "sampler.base_url=$url" "${policy[@]}" \
  sampler.concurrent_requests=256 sampling.concurrent_prompts=256
"$dir/rsr" -q verify "$wd" verifier.label=v2 verifier.type=numeric verifier.options.tolerance=1 > /dev/null 2>&1
rollouts=$((p * 8))

started=$(date +%s.%N)
"$dir/rsr" view "$wd" > "$work/view.out" 2> /dev/null &
view_pid=$!
pids+=("$view_pid")
until grep -q 'rsr view:' "$work/view.out" 2> /dev/null; do sleep 0.02; done
ready=$(date +%s.%N)
base=$(sed -n 's/^rsr view: \(http[^ ]*\) .*/\1/p' "$work/view.out")

echo "| request ($rollouts rollouts, $p prompts) | seconds | rows |"
echo "|---|---|---|"
echo "| start: the prompt list and disagreement flags computed, address printed | $(awk -v a="$started" -v b="$ready" 'BEGIN { printf "%.2f", b - a }') | |"
get() { # label path
  local secs
  secs=$(curl -s -o "$work/page.json" -w '%{time_total}' "$base${2#/}")
  local rows
  rows=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(len(v.get("rows", v.get("rollouts", []))), "of", v.get("total", "-"))' "$work/page.json")
  echo "| $1 | $secs | $rows |"
}
get "prompt list, first page" "/api/prompts?limit=50"
get "prompt list, first page again" "/api/prompts?limit=50"
get "deep page: offset 100,000 by pass rate, descending" "/api/prompts?limit=50&offset=$((p * 4 / 5))&sort=pass_rate&desc=1"
get "filtered: pass rate 0.25-0.75 and n_valid >= 8" "/api/prompts?limit=50&min_pass_rate=0.25&max_pass_rate=0.75&where=n_valid%20%3E%3D%208"
get "sorted by mean completion tokens" "/api/prompts?limit=50&sort=mean_completion_tokens&desc=1"
get "one prompt (8 rollouts, 3 verdict sources)" "/api/prompt?id=p$((p / 2))"
get "disagreements, first page" "/api/disagreements?limit=50"
get "disagreements, page at offset 100,000" "/api/disagreements?limit=50&offset=100000"
get "no answer found, first page" "/api/no-answer?limit=50"
echo "| rsr view peak RSS | $(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$view_pid/status") | |"
if python3 -c 'import duckdb' 2> /dev/null; then
  secs=$(python3 - "$wd" <<'PY'
import sys, time, duckdb
wd = sys.argv[1]
con = duckdb.connect()
con.execute("SET threads = 2")
t = time.time()
con.execute(f"""
  SELECT i.id, count(r.id) AS n_rollouts,
         sum(CASE WHEN r.error IS NULL AND r.response IS NOT NULL AND NOT r.truncated THEN 1 ELSE 0 END) AS n_valid,
         sum(CASE WHEN r.error IS NULL AND r.response IS NOT NULL AND NOT r.truncated AND r.score >= 1 THEN 1 ELSE 0 END) AS n_pass
  FROM read_parquet('{wd}/data/input.parquet') i
  LEFT JOIN read_parquet('{wd}/rollout/*/*.parquet') r ON i.id = r.id
  GROUP BY i.id ORDER BY i.id LIMIT 50""").fetchall()
print(f"{time.time() - t:.3f}")
PY
)
  echo "| DuckDB 2 threads: the same counts for the first page, by hand (no disagreement flags) | $secs | 50 |"
fi
