#!/usr/bin/env bash
# Throughput, CPU cost and peak memory of `rsr sample` against rsr-mock.
#
#   bash benches/sampler.sh                 # all three measurements
#   bash benches/sampler.sh throughput      # or: memory, replay, kill, peer
#
# throughput: C concurrent requests (n=1) to a mock answering after a fixed
#   latency L; reports achieved requests/s against the ideal C/L, and rsr's
#   CPU time (user+sys) per 1,000 requests. Default C=256, L=200 ms,
#   50·C requests; set C, L_MS and ROUNDS to change them.
# memory: P prompts × 8 rollouts (one request with n=8 each, mock latency
#   0, C=256) for P = 10,000 and 100,000 (set PROMPTS to change); reports
#   peak RSS, which should not grow with P.
# replay: the same P prompts × 8 rollouts from a replay file of ~500-byte
#   responses (a 40 MB file at 10,000 prompts, 400 MB at 100,000); reports
#   peak RSS, which should grow with the ids only, not with the file.
# kill: 2,000 prompts × 4 rollouts (one request of n=4 each), 32 requests
#   in flight, mock latency uniform around 200 ms; `rsr sample` is killed
#   with SIGKILL after KILL_AFTER seconds (default 5), then resumed to the
#   end. Reports the requests the mock received in all against the 2,000
#   needed: at most the 32 in flight at the kill may be sent twice.
# peer: the throughput and kill cases again with benches/peer_asyncio.py
#   (the official openai client in an asyncio script that appends each
#   response to JSON Lines and skips finished ids on a rerun), against the
#   same mock, for the same prompts; needs `pip install openai`.
# Results go to stdout as Markdown rows (docs/benchmarks.md).
source "$(dirname "$0")/common.sh"
needs_time


# Runs `rsr sample` on a prepared work dir; sets secs (sampling wall time from
# rsr's own summary), requests, cpu (user+sys s), rss_mib.
sample() { # work_dir extra-args...
  local wd=$1; shift
  /usr/bin/time -f '%U %S %M' -o "$work/time" \
    "$dir/rsr" sample "work_dir=$wd" ${url:+"sampler.base_url=$url"} "$@" 2> "$work/err" \
    || { cat "$work/err" >&2; exit 1; }
  read -r user sys kb < "$work/time"
  secs=$(sed -n 's/.*sampled in \([0-9.]*\) s: \([0-9]*\) requests.*/\1/p' "$work/err")
  requests=$(sed -n 's/.*sampled in \([0-9.]*\) s: \([0-9]*\) requests.*/\2/p' "$work/err")
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
  rss_mib=$((kb / 1024))
}

throughput() {
  local c=${C:-256} l=${L_MS:-200} rounds=${ROUNDS:-50}
  local n=$((c * rounds))
  prompts "$n" "$work/t.jsonl"
  "$dir/rsr" -q prepare "data.input_path=$work/t.jsonl" "work_dir=$work/t" sampler.model=mock \
    sampling.max_rollouts=1 sampling.step_size=1 sampling.max_steps=1 sampling.early_stop=false
  start_mock --latency-ms "$l" --accuracy 1
  sample "$work/t" "sampler.concurrent_requests=$c" "sampling.concurrent_prompts=$c"
  stop_mock
  echo "| throughput | C=$c, L=$l ms, $requests requests | $secs s | $(awk -v r="$requests" -v s="$secs" -v c="$c" -v l="$l" 'BEGIN {
    printf "%.0f req/s = %.3f of C/L = %.0f", r/s, (r/s)/(c*1000/l), c*1000/l }') | $(awk -v c="$cpu" -v r="$requests" 'BEGIN {
    printf "%.2f s CPU per 1,000 requests", 1000*c/r }') | $rss_mib MiB |"
}

memory() {
  for p in ${PROMPTS:-10000 100000}; do
    prompts "$p" "$work/m$p.jsonl"
    "$dir/rsr" -q prepare "data.input_path=$work/m$p.jsonl" "work_dir=$work/m$p" sampler.model=mock \
      sampling.max_rollouts=8 sampling.step_size=8 sampling.max_steps=1 sampling.early_stop=false
    start_mock --accuracy 0.5
    sample "$work/m$p" sampler.concurrent_requests=256 sampling.concurrent_prompts=256
    stop_mock
    local rows
    rows=$("$dir/rsr" sql "$work/m$p" "SELECT count(*) AS n FROM rollouts" --format csv | tail -1)
    echo "| memory | $p prompts × 8 rollouts ($rows rows, $requests requests) | $secs s | $(awk -v r="$rows" -v s="$secs" 'BEGIN {
      printf "%.0f rollouts/s", r/s }') | $(awk -v c="$cpu" -v r="$requests" 'BEGIN {
      printf "%.2f s CPU per 1,000 requests", 1000*c/r }') | $rss_mib MiB |"
  done
}

replay() {
  local pad
  pad=$(printf 'x%.0s' $(seq 1 460))
  for p in ${PROMPTS:-10000 100000}; do
    prompts "$p" "$work/r$p.jsonl"
    awk -v n="$p" -v pad="$pad" 'BEGIN { for (i = 0; i < n; i++) for (j = 0; j < 8; j++)
      printf "{\"id\":\"p%d\",\"response\":\"%s So \\\\boxed{%d}\"}\n", i, pad, (j % 2 ? i : i + 1) }' \
      > "$work/r$p.responses.jsonl"
    "$dir/rsr" -q prepare "data.input_path=$work/r$p.jsonl" "work_dir=$work/r$p" sampler.type=replay \
      "sampler.replay_path=$work/r$p.responses.jsonl" \
      sampling.max_rollouts=8 sampling.step_size=8 sampling.max_steps=1 sampling.early_stop=false
    sample "$work/r$p" sampler.concurrent_requests=256 sampling.concurrent_prompts=256
    local rows mb
    rows=$("$dir/rsr" sql "$work/r$p" "SELECT count(*) AS n FROM rollouts" --format csv | tail -1)
    mb=$(($(stat -c %s "$work/r$p.responses.jsonl") / 1000000))
    echo "| replay | $p prompts × 8 rollouts from a $mb MB file ($rows rows) | $secs s | $(awk -v r="$rows" -v s="$secs" 'BEGIN {
      printf "%.0f rollouts/s", r/s }') | $(awk -v c="$cpu" -v r="$rows" 'BEGIN {
      printf "%.2f s CPU per 1,000 rollouts", 1000*c/r }') | $rss_mib MiB |"
  done
}

kill9() {
  local p=2000 after=${KILL_AFTER:-5}
  prompts "$p" "$work/k.jsonl"
  "$dir/rsr" -q prepare "data.input_path=$work/k.jsonl" "work_dir=$work/k" sampler.model=mock \
    sampling.max_rollouts=4 sampling.step_size=4 sampling.max_steps=1 sampling.early_stop=false
  start_mock --latency-ms 200 --latency-dist uniform --accuracy 0.5
  local args=("work_dir=$work/k" "sampler.base_url=$url" sampler.concurrent_requests=32 sampling.concurrent_prompts=32)
  "$dir/rsr" -q sample "${args[@]}" 2> /dev/null &
  local pid=$!
  sleep "$after"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  local at_kill
  at_kill=$(curl -s "${url%/v1}/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/')
  "$dir/rsr" -q sample "${args[@]}" 2> /dev/null
  local sent rows
  sent=$(curl -s "${url%/v1}/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/')
  rows=$("$dir/rsr" sql "$work/k" "SELECT count(*) AS n FROM rollouts WHERE error IS NULL" --format csv | tail -1)
  stop_mock
  echo "| kill -9 | $p prompts × 4 (n=4), C=32, killed after $after s ($at_kill requests sent by then) | | $sent requests sent in all for $p needed: **$((sent - p)) sent twice** | | $rows rollouts, $(( rows / 4 )) prompts complete |"
}

peer() {
  python3 -c "import openai" 2>/dev/null || { echo "peer: needs the openai package (pip install openai)" >&2; exit 1; }
  local c=${C:-256} l=${L_MS:-200} rounds=${ROUNDS:-50}
  local n=$((c * rounds)) script=benches/peer_asyncio.py
  prompts "$n" "$work/pt.jsonl"
  start_mock --latency-ms "$l" --accuracy 1
  /usr/bin/time -f '%U %S %M' -o "$work/time" python3 "$script" "$url" "$work/pt.jsonl" "$work/pt.out" "$c" 1 > "$work/peer.out"
  read -r user sys kb < "$work/time"
  local secs
  secs=$(sed -n 's/.* in \([0-9.]*\) s/\1/p' "$work/peer.out")
  stop_mock
  echo "| peer throughput (openai AsyncOpenAI) | C=$c, L=$l ms, $n requests | $secs s | $(awk -v r="$n" -v s="$secs" -v c="$c" -v l="$l" 'BEGIN {
    printf "%.0f req/s = %.3f of C/L = %.0f", r/s, (r/s)/(c*1000/l), c*1000/l }') | $(awk -v u="$user" -v s="$sys" -v r="$n" 'BEGIN {
    printf "%.2f s CPU per 1,000 requests", 1000*(u+s)/r }') | $((kb / 1024)) MiB |"

  local p=2000 after=${KILL_AFTER:-5}
  prompts "$p" "$work/pk.jsonl"
  start_mock --latency-ms 200 --latency-dist uniform --accuracy 0.5
  python3 "$script" "$url" "$work/pk.jsonl" "$work/pk.out" 32 4 > /dev/null 2>&1 &
  local pid=$!
  sleep "$after"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  local at_kill sent rows
  at_kill=$(curl -s "${url%/v1}/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/')
  python3 "$script" "$url" "$work/pk.jsonl" "$work/pk.out" 32 4 > /dev/null
  sent=$(curl -s "${url%/v1}/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/')
  rows=$(wc -l < "$work/pk.out")
  stop_mock
  echo "| peer kill -9 (openai AsyncOpenAI) | $p prompts × 4 (n=4), C=32, killed after $after s ($at_kill requests sent by then) | | $sent requests sent in all for $p needed: **$((sent - p)) sent twice** | | $rows lines for $p prompts |"
}

command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
echo "| case | load | sampling time | rate | rsr CPU | peak RSS |"
echo "|---|---|---|---|---|---|"
case "${1:-all}" in
  throughput) throughput ;;
  memory) memory ;;
  replay) replay ;;
  kill) kill9 ;;
  peer) peer ;;
  all) throughput; memory; replay; kill9; peer ;;
  *) echo "usage: $0 [throughput|memory|replay|kill|peer]" >&2; exit 2 ;;
esac
