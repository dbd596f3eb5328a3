#!/usr/bin/env bash
# `rsr run` through a batch API against rsr-mock: 100,000 requests (one
# response per prompt) in batches of at most 50,000, each batch taking
# BATCH_SECONDS (default 5) at the mock. Reports rsr's CPU time and peak
# memory per 1,000 requests, the time from the last batch's results to
# train/ written, and the cost of the same tokens at online and batch
# prices (pricing.input=0.27, pricing.output=1.10 per million tokens).
#
#   bash benches/batch.sh            # PROMPTS=100000 BATCH_SECONDS=5, ROUND=N for
#                                    # sampler.batch.round_prompts (default 10,000)
# Results go to stdout as Markdown rows (docs/benchmarks.md).
source "$(dirname "$0")/common.sh"
needs_time

n=${PROMPTS:-100000}
secs=${BATCH_SECONDS:-5}
# Word problems whose answers the mock knows (right with a per-prompt
# probability), so pass rates spread as a model's do.
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
  printf "{\"id\":\"p%d\",\"messages\":[{\"role\":\"user\",\"content\":\"A shop sells %d pencils in the morning and %d in the afternoon. How many pencils does it sell in all? Put the final answer in \\\\boxed{}.\"}],\"answer\":\"%d\"}\n", i, i, 2 * i + 1, 3 * i + 1 }' > "$work/prompts.jsonl"

start_mock --gold "$work/prompts.jsonl" --batch-seconds "$secs"

stamp() { while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done; }
/usr/bin/time -f '%U %S %M %e' -o "$work/time" \
  "$dir/rsr" run "work_dir=$work/run" "data.input_path=$work/prompts.jsonl" \
  sampler.model=mock "sampler.base_url=$url" sampler.mode=batch \
  sampler.batch.poll_interval=0.5 sampling.max_rollouts=1 sampling.step_size=1 ${ROUND:+sampler.batch.round_prompts=$ROUND} \
  shard.size=10000 pricing.input=0.27 pricing.output=1.10 \
  > "$work/out" 2> >(stamp > "$work/err")
sleep 0.5
end=$(date +%s.%N)
read -r user sys kb wall < "$work/time"
last=$(grep -E 'batch b[0-9]+ .*: completed' "$work/err" | tail -1 | cut -d' ' -f1)
requests=$(curl -s "${url%/v1}/stats" | sed -n 's/.*"batch_requests":\([0-9]*\).*/\1/p')
batches=$(grep -c '"event":"intent"' "$work/run/batch/log.jsonl")
spent=$(grep '^spent' "$work/out")
prompt_tokens=$(echo "$spent" | sed -n 's/.* \([0-9]*\) prompt + .*/\1/p')
completion_tokens=$(echo "$spent" | sed -n 's/.* prompt + \([0-9]*\) completion.*/\1/p')
# The run's own end (its last log line) is the time train/ was written.
done_at=$(tail -1 "$work/err" | cut -d' ' -f1)
awk -v u="$user" -v s="$sys" -v kb="$kb" -v r="$requests" -v b="$batches" -v w="$wall" \
    -v last="$last" -v fin="$done_at" -v p="$prompt_tokens" -v c="$completion_tokens" -v secs="$secs" 'BEGIN {
  printf "| %d requests in %d batches (%.0f s each at the mock) | %.2f s CPU, %.1f ms per 1,000 requests | %.0f MiB peak, %.2f MiB per 1,000 requests | %.1f s from the last results to train/ | %.1f s wall |\n",
    r, b, secs, u + s, (u + s) * 1e6 / r, kb / 1024, kb / 1024 / (r / 1000), fin - last, w
  online = (p * 0.27 + c * 1.10) / 1e6
  printf "| cost of %d prompt + %d completion tokens | online $%.2f | batch $%.2f | saved $%.2f |\n", p, c, online, online / 2, online / 2
}'
grep -E '^(spent|passed|train)' "$work/out" >&2
