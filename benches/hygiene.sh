#!/usr/bin/env bash
# Decontamination and dedup at prepare time: `rsr prepare` on P prompts with
# and without the checks, against 2,000 benchmark problems, and the Python
# tools a user would run instead on the same files.
#
#   bash benches/hygiene.sh                 # P = 1,000,000
#   PROMPTS=100000 bash benches/hygiene.sh
#
# benches/gen_hygiene.py writes the prompts (math-word-problem-like text,
# with planted benchmark copies, paraphrases, exact and near duplicates) and
# the benchmark. Timed (wall clock, peak RSS via /usr/bin/time):
#   1. prepare: no checks
#   2. prepare + decontaminate: data.decontaminate.benchmarks (8-grams)
#   3. prepare + dedup near: data.dedup.mode=near (MinHash 128, Jaccard 0.8)
#   4. prepare + both
#   5. peer, decontaminate: open-r1's 8-gram check in Python (benches/peer_hygiene.py)
#   6. peer, dedup: datasketch MinHashLSH (pip install datasketch), when installed
# and the counts each found next to what was planted.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 1; }
cargo build --release --quiet --bins
bin="$(pwd)/${CARGO_TARGET_DIR:-target}/release/rsr"
[ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-target}/release/rsr"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prompts=${PROMPTS:-1000000}

python3 benches/gen_hygiene.py "$work" "$prompts" 2000 > "$work/planted"
echo "planted: $(cat "$work/planted")"
echo "prompts.jsonl: $(( $(stat -c %s "$work/prompts.jsonl") / 1048576 )) MiB"
echo

measure() { # label -- command...
  local label=$1; shift 2
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"
  local found
  found=$(grep -ho '[0-9]* of [0-9]* prompts share a run\|[0-9]* exact duplicates, [0-9]* near duplicates\|"contaminated": [0-9]*\|"duplicates": [0-9]*' "$work/err" "$work/out" | tr '\n' ';' || true)
  awk -v l="$label" -v p="$prompts" -v s="$secs" -v k="$kb" -v f="$found" 'BEGIN {
    printf "| %s | %d | %.2f | %.0f | %.0f | %s |\n", l, p, s, (s > 0 ? p/s : 0), k/1024, f }'
}

echo "| step | prompts | seconds | prompts/s | peak RSS MiB | found |"
echo "|---|---|---|---|---|---|"
in="data.input_path=$work/prompts.jsonl"
bench="data.decontaminate.benchmarks=[$work/bench.jsonl]"
measure "prepare" -- "$bin" prepare "$in" "work_dir=$work/w0"
measure "prepare + decontaminate" -- "$bin" prepare "$in" "$bench" "work_dir=$work/w1"
measure "prepare + dedup near" -- "$bin" prepare "$in" data.dedup.mode=near "work_dir=$work/w2"
measure "prepare + both" -- "$bin" prepare "$in" "$bench" data.dedup.mode=near "work_dir=$work/w3"
"$bin" -q sql "$work/w3" "SELECT count(*) FILTER (WHERE contaminated) AS contaminated, \
  count(*) FILTER (WHERE duplicate_similarity = 1) AS exact, \
  count(*) FILTER (WHERE duplicate_similarity < 1) AS near FROM inputs" --format csv > "$work/sql"
measure "peer: open-r1 8-gram decontamination (Python)" -- \
  python3 benches/peer_hygiene.py decontaminate "$work/prompts.jsonl" "$work/bench.jsonl"
if python3 -c "import datasketch" 2>/dev/null; then
  measure "peer: datasketch MinHashLSH dedup (Python)" -- \
    python3 benches/peer_hygiene.py dedup "$work/prompts.jsonl"
else
  echo "(datasketch not installed: pip install datasketch for the dedup peer)" >&2
fi
echo
echo "rsr flags (prepare + both): $(tail -1 "$work/sql")  (contaminated,exact,near)"
