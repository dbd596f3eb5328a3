#!/usr/bin/env bash
# Throughput and memory of judging saved rollouts with `rsr verify` against
# rsr-mock as the judge.
#
#   bash benches/judge.sh
#
# P prompts (default 2,500) × 4 rollouts are sampled from the mock (latency
# 0), then judged by `llm-judge` with the responses' thinking shown
# (`thinking: true` makes every judge prompt distinct, so each rollout is one
# request), C judge requests in flight (default 64) to a judge answering after
# L ms (default 50). Reports judge requests/s against the ideal C/L, CPU per
# 1,000 requests and peak RSS; then the same command again on the same work
# dir (every answer saved: no request, only the verdicts re-read); then a
# reward model with list requests (OpenRLHF shape, 16 conversations each).
# Set P, C and L_MS to change them. Results go to stdout as Markdown rows
# (docs/benchmarks.md).
source "$(dirname "$0")/common.sh"
needs_time

p=${P:-2500} c=${C:-64} l=${L_MS:-50}
prompts "$p" "$work/p.jsonl"


"$dir/rsr" -q prepare "data.input_path=$work/p.jsonl" "work_dir=$work/w" sampler.model=mock \
  sampling.max_rollouts=4 sampling.step_size=4 sampling.max_steps=1 sampling.early_stop=false
start_mock --gold "$work/w/data/input.parquet"
"$dir/rsr" -q sample "work_dir=$work/w" "sampler.base_url=$url" sampler.concurrent_requests=128
stop_mock

# Runs `rsr verify` with args; sets secs, sent, requests, cpu, rss_mib.
judge() {
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
    "$dir/rsr" verify "$work/w" "judge.base_url=$url" judge.model=mock "$@" 2> "$work/err" \
    || { cat "$work/err" >&2; exit 1; }
  read -r wall user sys kb < "$work/time"
  secs=$(sed -n 's/.*answered from saved answers, in \([0-9.]*\) s.*/\1/p' "$work/err")
  flight=$(sed -n 's/.* \([0-9.]*\) s in flight.*/\1/p' "$work/err")
  sent=$(sed -n 's/.* \([0-9]*\) request item(s) sent (\([0-9]*\) requests.*/\1/p' "$work/err")
  requests=$(sed -n 's/.* \([0-9]*\) request item(s) sent (\([0-9]*\) requests.*/\2/p' "$work/err")
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
  rss_mib=$((kb / 1024))
}

start_mock --gold "$work/w/data/input.parquet" --latency-ms "$l"
judge verifier.type=llm-judge verifier.options.thinking=true "judge.concurrent_requests=$c"
asked=$(curl -s "${url%/v1}/stats" | sed 's/.*"judge_requests":\([0-9]*\).*/\1/')
echo "| llm-judge | $p prompts × 4 rollouts, C=$c, L=$l ms, $requests requests (mock counted $asked) | $secs s ($flight s in flight) | $(awk -v r="$requests" -v s="$secs" -v f="$flight" -v c="$c" -v l="$l" 'BEGIN {
  printf "%.0f req/s = %.3f of C/L = %.0f over the command; %.3f while requests were in flight", r/s, (r/s)/(c*1000/l), c*1000/l, (r/f)/(c*1000/l) }') | $(awk -v c="$cpu" -v r="$requests" 'BEGIN {
  printf "%.2f s CPU per 1,000 requests", 1000*c/r }') | $rss_mib MiB |"
judge verifier.type=llm-judge verifier.options.thinking=true "judge.concurrent_requests=$c" verifier.label=again
echo "| llm-judge again (every answer saved) | $((p * 4)) rollouts, $sent sent | $secs s | $(awk -v r="$((p * 4))" -v s="$secs" 'BEGIN {
  printf "%.0f rollouts/s re-read", r/s }') | $cpu s CPU | $rss_mib MiB |"
judge verifier.type=reward-model verifier.options.api=openrlhf verifier.options.thinking=true "judge.concurrent_requests=$c"
echo "| reward-model (OpenRLHF, 16 per request) | $sent conversations in $requests requests, C=$c, L=$l ms | $secs s | $(awk -v r="$sent" -v s="$secs" 'BEGIN {
  printf "%.0f conversations/s", r/s }') | $(awk -v c="$cpu" -v r="$sent" 'BEGIN {
  printf "%.2f s CPU per 1,000 conversations", 1000*c/r }') | $rss_mib MiB |"
stop_mock
