#!/usr/bin/env bash
# A judge asked while sampling: does it slow sampling, is the judge kept
# busy, what does early stop on its verdicts save, and at what memory.
#
#   bash benches/judge_live.sh
#
# Two rsr-mock servers: the sampler (latency L_S, default 200 ms, right with
# a per-prompt probability spread over [0, 1]) and the judge (latency L_J,
# default 50 ms, the correctness template, always right). P prompts (default
# 2,000) of "What is i plus 0?", 8 rollouts at most in steps of n=2,
# sampler.concurrent_requests C_S (default 64), 256 prompts in flight.
#
# 1. sampling: the same fixed-N sampling (early stop off) scored by the
#    math-rlvr rule (no judge) and by llm-judge asked while sampling
#    (judge.concurrent_requests 64: room to spare); sampling requests/s of
#    each against C_S/L_S, and the judged run's over the judge-free one
#    (target >= 0.95).
# 2. judge-bound: the fixed-N run with judge.concurrent_requests C_J
#    (default 4): the judge is the bottleneck; judge requests/s over the
#    run against C_J/L_J (target >= 0.95: the pipeline keeps a slow judge
#    busy), with the sampler held at sampling.max_pending_verdicts (256).
# 3. early stop: the judged run again with early stop (sft: one passing
#    response); rollouts and judge requests against fixed N, and the SFT
#    rows of each.
# Peak RSS of every run. Results go to stdout as Markdown rows.
source "$(dirname "$0")/common.sh"
needs_time

P=${P:-2000}
C_S=${C_S:-64}
L_S=${L_S:-200}
L_J=${L_J:-50}
C_J=${C_J:-4}

start_named_mock() { # name args...: sets root
  local name=$1; shift
  "$dir/rsr-mock" --port 0 "$@" > "$work/$name.out" 2>/dev/null &
  pids+=($!)
  until grep -q listening "$work/$name.out" 2>/dev/null; do sleep 0.05; done
  root=$(sed -n 's/^listening on //p' "$work/$name.out")
}

stat() { # root name
  curl -s "$1/stats" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

# prepare work_dir prompts verifier extra...
prepare() {
  local wd=$1 n=$2 verifier=$3; shift 3
  prompts "$n" "$work/$wd.jsonl"
  "$dir/rsr" -q prepare "data.input_path=$work/$wd.jsonl" "work_dir=$work/$wd" sampler.model=mock \
    "verifier.type=$verifier" sampling.max_rollouts=8 sampling.step_size=2 sampling.max_steps=4 \
    sampling.concurrent_prompts=256 "$@"
}

# run work_dir sampler_root judge_root extra...: sets secs, requests,
# judge_requests, rollouts, rss_mib, sft
run() {
  local wd=$1 s=$2 j=$3; shift 3
  local before_s before_j
  before_s=$(stat "$s" requests); before_j=$(stat "$j" judge_requests)
  /usr/bin/time -f '%M' -o "$work/time" \
    "$dir/rsr" run "work_dir=$work/$wd" "sampler.base_url=$s/v1" "judge.base_url=$j/v1" \
    judge.model=mock "sampler.concurrent_requests=$C_S" "$@" > "$work/out" 2> "$work/err" \
    || { cat "$work/err" >&2; exit 1; }
  rss_mib=$(( $(cat "$work/time") / 1024 ))
  secs=$(sed -n 's/.*sampled in \([0-9.]*\) s: \([0-9]*\) requests, \([0-9]*\) rollouts.*/\1/p' "$work/err")
  rollouts=$(sed -n 's/.*sampled in \([0-9.]*\) s: \([0-9]*\) requests, \([0-9]*\) rollouts.*/\3/p' "$work/err")
  requests=$(( $(stat "$s" requests) - before_s ))
  judge_requests=$(( $(stat "$j" judge_requests) - before_j ))
  sft=$(sed -n 's/^train *sft: \([0-9]*\) rows.*/\1/p' "$work/out")
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
rate() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.0f", r / s }'; }

prepare rules "$P" math-rlvr sampling.early_stop=false
prepare fixed "$P" llm-judge sampling.early_stop=false
prepare early "$P" llm-judge
prepare bound "$P" llm-judge sampling.early_stop=false
gold="$work/rules/data/input.parquet"
start_named_mock sampler --gold "$gold" --latency-ms "$L_S"; sroot=$root
start_named_mock judge --latency-ms "$L_J"; jroot=$root
ideal_s=$(( C_S * 1000 / L_S ))

echo "| case | work | sampling | judge | rollouts / SFT rows | peak RSS |"
echo "|---|---|---|---|---|---|"
run rules "$sroot" "$jroot"
free_rate=$(rate "$requests" "$secs")
echo "| no judge (math-rlvr), fixed N | $P prompts x 8, C=$C_S, L=$L_S ms | $requests req in $secs s = $free_rate req/s = $(ratio "$free_rate" "$ideal_s") of C/L | - | $rollouts / $sft | $rss_mib MiB |"
fixed_rollouts_rules=$rollouts

run fixed "$sroot" "$jroot" judge.concurrent_requests=64
judged_rate=$(rate "$requests" "$secs")
fixed_rollouts=$rollouts; fixed_judge=$judge_requests; fixed_sft=$sft
echo "| llm-judge while sampling, fixed N | same, judge C=64, L=$L_J ms | $requests req in $secs s = $judged_rate req/s = $(ratio "$judged_rate" "$ideal_s") of C/L, $(ratio "$judged_rate" "$free_rate") of the judge-free rate | $judge_requests requests | $rollouts / $sft | $rss_mib MiB |"

run early "$sroot" "$jroot" judge.concurrent_requests=64
echo "| llm-judge while sampling, early stop | same | $requests req in $secs s | $judge_requests requests ($(ratio "$judge_requests" "$fixed_judge") of fixed N) | $rollouts / $sft ($(ratio "$rollouts" "$fixed_rollouts") of the rollouts for $(ratio "$sft" "$fixed_sft") of the rows) | $rss_mib MiB |"

run bound "$sroot" "$jroot" "judge.concurrent_requests=$C_J"
jrate=$(awk -v r="$judge_requests" -v s="$secs" 'BEGIN { printf "%.1f", r / s }')
ideal_j=$(awk -v c="$C_J" -v l="$L_J" 'BEGIN { printf "%.1f", c * 1000 / l }')
echo "| judge-bound | $P prompts x 8, judge C=$C_J, L=$L_J ms, 256 pending at most | $requests req in $secs s | $judge_requests requests = $jrate req/s = $(ratio "$jrate" "$ideal_j") of C/L = $ideal_j | $rollouts / $sft | $rss_mib MiB |"
