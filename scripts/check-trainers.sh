#!/usr/bin/env bash
# Loads every export shape where users train, as a check after an export
# change: the bundled GSM8K example and an edge set (a developer message, a
# system prompt, a multi-turn prompt, thinking returned as
# reasoning_content) are sampled from rsr-mock, exported as sft and dpo in
# every shape and thinking mode, then
#   - TRL (SFTTrainer, DPOTrainer) loads each trl, trl_prompt_completion and
#     Parquet file and trains two steps of a tiny random model,
#   - LLaMA-Factory loads each sharegpt and alpaca file with its documented
#     dataset_info.json mapping and template qwen3, drops no row, and trains
#     two steps.
# Each runs in a venv of its own under ~/.cache (created on first use from
# PyPI: torch, trl, transformers, datasets; llamafactory with its pins).
# Takes a few minutes once the venvs exist. Not part of .ci/run (the
# downloads are large); run it by hand:
#   bash scripts/check-trainers.sh [trl|llamafactory|all]
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --bins
export PATH="$(cd "$target" && pwd)/debug:$PATH"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/exports"
mkdir -p "$out"

# The edge set: what trainers drop silently.
cat > "$work/edge.jsonl" <<'JSONL'
{"id":"developer","messages":[{"role":"developer","content":"Answer with a boxed number only."},{"role":"user","content":"What is 9 squared?"}],"answer":"81"}
{"id":"system","messages":[{"role":"system","content":"You are a careful tutor."},{"role":"user","content":"What is 12 times 12?"}],"answer":"144"}
{"id":"multi","messages":[{"role":"user","content":"What is 1 plus 1?"},{"role":"assistant","content":"2"},{"role":"user","content":"And 20 plus 22?"}],"answer":"42"}
{"id":"unicode","messages":[{"role":"user","content":"计算 7 × 6 = ? 👨‍👩‍👧 مرحبا"}],"answer":"42"}
JSONL

rsr run examples/gsm8k.yaml work_dir="$work/gsm8k" formatter.1.type=dpo >/dev/null 2>&1
rsr run examples/gsm8k.yaml work_dir="$work/edge" data.input_path="$work/edge.jsonl" \
  data.preprocess.transform=null formatter.1.type=dpo sampling.max_rollouts=8 \
  "sampler.launch=rsr-mock --port {port} --gold {input} --reasoning field --accuracy 0.5" >/dev/null 2>&1

for run in gsm8k edge; do
  for formatter in sft dpo; do
    for reasoning in think_tags drop field; do
      for shape in trl trl_prompt_completion sharegpt alpaca parquet; do
        case "$reasoning:$shape" in field:sharegpt|field:alpaca) continue ;; esac
        ext=jsonl; [ "$shape" = parquet ] && ext=parquet
        rsr export "$work/$run" --formatter "$formatter" --reasoning "$reasoning" \
          --format "$shape" -o "$out/$formatter.$reasoning.$shape.$run.$ext" 2>/dev/null
      done
    done
  done
done
python3 - "$out" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
counts = {}
for m in glob.glob(os.path.join(d, "*.manifest.json")):
    manifest = json.load(open(m))
    counts[os.path.basename(m)[: -len(".manifest.json")]] = manifest["rows"]
json.dump(counts, open(os.path.join(d, "counts.json"), "w"), indent=2)
print(f"exported {len(counts)} files")
PY

venv() {
  local dir="$HOME/.cache/rsr-$1-venv"; shift
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import ${1%%[<>=]*}" 2>/dev/null; then
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet "$@"
  fi
  echo "$dir/bin/python"
}
if [ "$which" = trl ] || [ "$which" = all ]; then
  py="$(venv trainers trl transformers datasets torch)"
  "$py" scripts/check_trainers.py trl "$out"
fi
if [ "$which" = llamafactory ] || [ "$which" = all ]; then
  py="$(venv llamafactory llamafactory torch)"
  "$py" scripts/check_trainers.py llamafactory "$out"
fi
