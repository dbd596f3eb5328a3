#!/usr/bin/env bash
# Scale-out: sampling tasks over one work dir, and one process driving many
# servers.
#
#   bash benches/scale.sh            # both
#   bash benches/scale.sh tasks      # or: endpoints
#
# tasks: P prompts (default 4,000) in shards of 100 against 4 rsr-mock
#   servers (latency uniform around L_MS, default 200 ms; half the answers
#   right, seeded), up to 4 rollouts in steps of 2 with early stop for SFT.
#   Once as one `rsr sample` with 64 requests in flight, once as 8 tasks
#   (`--task I/8`, 8 in flight each) started together on a new work dir, and
#   once as 8 tasks of which one is killed (SIGKILL) after KILL_AFTER s
#   (default 3) and rerun. Reports wall time, the tasks' CPU and peak RSS,
#   the requests the servers received, and whether the rows (id,
#   rollout_idx, response) are those of the single run.
# endpoints: one `rsr sample` against N_SERVERS rsr-mock servers (default
#   32) listed in sampler.endpoints_file, C requests in flight (default
#   4,096), each answered after L2_MS (default 2,000 ms); 4·C prompts × 2
#   rollouts (one request of n=2 each). Reports requests/s against the
#   Little's-law limit C/L, rsr's CPU per 1,000 requests and peak RSS;
#   then the same requests from benches/peer_asyncio.py (the openai client
#   in asyncio, servers round-robin) when the openai package is installed.
# Results go to stdout as Markdown rows (docs/benchmarks.md).
source "$(dirname "$0")/common.sh"
needs_time

urls=()
start_mocks() { # count args...
  local n=$1; shift
  for i in $(seq 1 "$n"); do
    "$dir/rsr-mock" --port 0 "$@" > "$work/mock$i.out" &
    pids+=($!)
  done
  for i in $(seq 1 "$n"); do
    until grep -q listening "$work/mock$i.out" 2>/dev/null; do sleep 0.05; done
    urls+=("$(sed -n 's/^listening on //p' "$work/mock$i.out")/v1")
  done
}

stop_mocks() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); urls=(); }

served() { # requests all mocks received
  local total=0
  for u in "${urls[@]}"; do
    total=$((total + $(curl -s "${u%/v1}/stats" | grep -o '"requests":[0-9]*' | cut -d: -f2)))
  done
  echo "$total"
}

rows_hash() { # work_dir
  "$dir/rsr" sql "$1" "SELECT id, rollout_idx, response FROM rollouts ORDER BY id, rollout_idx" --format csv | md5sum | cut -c1-12
}

duplicates() { # work_dir
  "$dir/rsr" sql "$1" "SELECT count(*) - count(DISTINCT concat(id, '/', rollout_idx)) AS d FROM rollouts" --format csv | tail -1
}

tasks() {
  local p=${P:-4000} l=${L_MS:-200} after=${KILL_AFTER:-3}
  prompts "$p" "$work/t.jsonl"
  "$dir/rsr" -q prepare "data.input_path=$work/t.jsonl" "work_dir=$work/gold" > /dev/null
  start_mocks 4 --gold "$work/gold/data/input.parquet" --accuracy 0.5 --latency-ms "$l" --latency-dist uniform
  local list
  list="[$(IFS=,; echo "${urls[*]}")]"
  local common=("data.input_path=$work/t.jsonl" shard.size=100 sampler.model=mock "sampler.base_url=$list"
    sampler.seed=1 sampling.max_rollouts=4 sampling.step_size=2 formatter.0.type=sft)

  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S %M' -o "$work/single.time" \
    "$dir/rsr" -q sample "work_dir=$work/single" "${common[@]}" sampler.concurrent_requests=64 sampling.concurrent_prompts=64
  t1=$(date +%s.%N)
  local single_requests single_hash
  single_requests=$(served)
  single_hash=$(rows_hash "$work/single")
  read -r user sys kb < "$work/single.time"
  echo "| 1 process, 64 in flight | $p prompts, 40 shards, 4 servers | $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }') | $single_requests requests | $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f s", u + s }') | $((kb / 1024)) MiB | $single_hash (reference) |"

  run_tasks() { # work_dir kill?
    local wd=$1 kill=$2 pids=() before
    before=$(served)
    t0=$(date +%s.%N)
    for i in $(seq 0 7); do
      /usr/bin/time -f '%U %S %M' -o "$work/task$i.time" \
        "$dir/rsr" -q sample "work_dir=$wd" "${common[@]}" sampler.concurrent_requests=8 sampling.concurrent_prompts=8 --task "$i/8" &
      pids+=($!)
    done
    if [ "$kill" = kill ]; then
      sleep "$after"
      # /usr/bin/time's child: the rsr of task 3.
      pkill -9 -f "work_dir=$wd .*--task 3/8" || true
    fi
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$kill" = kill ]; then
      "$dir/rsr" status "$wd" | grep '^3/8' > "$work/killed.status" || true
      /usr/bin/time -f '%U %S %M' -o "$work/task3.rerun.time" \
        "$dir/rsr" -q sample "work_dir=$wd" "${common[@]}" sampler.concurrent_requests=8 sampling.concurrent_prompts=8 --task 3/8
    fi
    t1=$(date +%s.%N)
    cpu=$(cat "$work"/task*.time | awk '{ c += $1 + $2 } END { printf "%.2f", c }')
    rss=$(cat "$work"/task*.time | awk '{ if ($3 > m) m = $3 } END { printf "%d", m / 1024 }')
    requests=$(( $(served) - before ))
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    rm -f "$work"/task*.time
  }

  run_tasks "$work/eight" no
  echo "| 8 tasks, 8 in flight each | the same | $secs s | $requests requests | $cpu s (all tasks) | $rss MiB (largest task) | $(rows_hash "$work/eight"), $(duplicates "$work/eight") duplicates |"
  run_tasks "$work/killed" kill
  echo "| 8 tasks, task 3 killed after $after s and rerun | the same | $secs s | $requests requests ($((requests - single_requests)) more than one run: the killed task's requests in flight) | $cpu s | $rss MiB | $(rows_hash "$work/killed"), $(duplicates "$work/killed") duplicates |"
  echo "<!-- task 3 when killed: $(cat "$work/killed.status") -->"
  stop_mocks
}

endpoints() {
  local n=${N_SERVERS:-32} c=${C:-4096} l=${L2_MS:-2000}
  local p=$((4 * c))
  prompts "$p" "$work/e.jsonl"
  start_mocks "$n" --latency-ms "$l" --accuracy 0.5
  printf '%s\n' "${urls[@]}" > "$work/servers.txt"
  "$dir/rsr" -q prepare "data.input_path=$work/e.jsonl" "work_dir=$work/e" sampler.model=mock \
    sampling.max_rollouts=2 sampling.step_size=2 sampling.max_steps=1 sampling.early_stop=false
  /usr/bin/time -f '%U %S %M' -o "$work/e.time" \
    "$dir/rsr" sample "work_dir=$work/e" "sampler.endpoints_file=$work/servers.txt" \
    "sampler.concurrent_requests=$c" "sampling.concurrent_prompts=$c" 2> "$work/e.err" \
    || { cat "$work/e.err" >&2; exit 1; }
  read -r user sys kb < "$work/e.time"
  local secs requests
  secs=$(sed -n 's/.*sampled in \([0-9.]*\) s: \([0-9]*\) requests.*/\1/p' "$work/e.err")
  requests=$(sed -n 's/.*sampled in \([0-9.]*\) s: \([0-9]*\) requests.*/\2/p' "$work/e.err")
  local per_server
  per_server=$(for u in "${urls[@]}"; do curl -s "${u%/v1}/stats" | grep -o '"requests":[0-9]*' | cut -d: -f2; done | sort -n | awk '{ a[NR] = $1 } END { printf "%s to %s", a[1], a[NR] }')
  local peer=""
  if python3 -c "import openai" 2>/dev/null; then
    /usr/bin/time -f '%U %S %M' -o "$work/peer.time" \
      python3 benches/peer_asyncio.py "$(IFS=,; echo "${urls[*]}")" "$work/e.jsonl" "$work/peer.out" "$c" 2 > "$work/peer.log"
    local pu ps pk psecs
    read -r pu ps pk < "$work/peer.time"
    psecs=$(sed -n 's/.* in \([0-9.]*\) s/\1/p' "$work/peer.log")
    peer="| peer: openai AsyncOpenAI, the same servers round-robin | C=$c, L=$l ms, $p requests (n=2) | $psecs s | $(awk -v r="$p" -v s="$psecs" -v c="$c" -v l="$l" 'BEGIN {
      printf "%.0f req/s = %.3f of C/L", r/s, (r/s)/(c*1000/l) }') | $(awk -v u="$pu" -v s="$ps" -v r="$p" 'BEGIN {
      printf "%.2f s CPU per 1,000 requests", 1000*(u+s)/r }') | $((pk / 1024)) MiB | |"
  else
    echo "endpoints: the peer needs the openai package (pip install openai); skipped" >&2
  fi
  stop_mocks
  echo "| 1 process, $n servers from an endpoints file | C=$c, L=$l ms, $requests requests (n=2), $per_server per server | $secs s | $(awk -v r="$requests" -v s="$secs" -v c="$c" -v l="$l" 'BEGIN {
    printf "%.0f req/s = %.3f of C/L = %.0f", r/s, (r/s)/(c*1000/l), c*1000/l }') | $(awk -v u="$user" -v s="$sys" -v r="$requests" 'BEGIN {
    printf "%.2f s CPU per 1,000 requests", 1000*(u+s)/r }') | $((kb / 1024)) MiB | |"
  [ -n "$peer" ] && echo "$peer"
  return 0
}

command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
echo "| case | load | wall time | requests / rate | CPU | peak RSS | rows |"
echo "|---|---|---|---|---|---|---|"
case "${1:-all}" in
  tasks) tasks ;;
  endpoints) endpoints ;;
  all) tasks; endpoints ;;
  *) echo "usage: $0 [tasks|endpoints]" >&2; exit 2 ;;
esac
