#!/usr/bin/env bash
# One GPU recipe's loop: sample with the teacher -> export -> check the
# exports in TRL -> train the student (TRL SFT, then DPO where the recipe
# has trl_dpo.yaml) -> evaluate base and trained students -> compare.
# NOT RUN by the project (no GPU here): the commands are the ones the CPU
# loop (recipes/cpu-loop/run.sh) runs for real, with vLLM in place of
# llama-server.
#
#   TRAIN=train.jsonl TEST=test.jsonl bash recipes/gpu/run.sh math-distill
#
# Needs: rsr on PATH, vLLM (`vllm serve`), and a Python with trl and
# transformers (`pip install -r recipes/cpu-loop/requirements.txt` pins a
# set that works; add your CUDA torch). Each step writes a marker under
# output/gpu/RECIPE and is skipped on a rerun; rsr's own
# steps resume inside a step. Settings: TRAIN, TEST (the recipe README
# says where to get them), STUDENT (default: the recipe's), PYTHON. The
# output is output/gpu/RECIPE, where the training configs look.
set -euo pipefail
cd "$(dirname "$0")/../.."
recipe="${1:?usage: bash recipes/gpu/run.sh RECIPE (math-distill, mcq, chat-judge, code, ifeval)}"
dir="recipes/gpu/$recipe"
[ -f "$dir/sample.yaml" ] || { echo "no recipe $dir" >&2; exit 2; }
: "${TRAIN:?set TRAIN to the training prompts (see $dir/README.md)}"
: "${TEST:?set TEST to the test set (see $dir/README.md)}"
# The training configs read and write below this path.
OUT="output/gpu/$recipe"
py="${PYTHON:-python3}"
# The student the TRL configs train (model_name_or_path), unless STUDENT says.
student="${STUDENT:-$(sed -n 's/^model_name_or_path: *//p' "$dir/trl_sft.yaml")}"
mkdir -p "$OUT/steps"

run_step() { # name command...
  if [ -f "$OUT/steps/$1.done" ]; then echo "== $1: done before, skipped"; return; fi
  echo "== $1"
  local name="$1" start=$SECONDS; shift
  set +e; (set -e; "$@"); local rc=$?; set -e
  [ "$rc" = 0 ] || { echo "recipe $recipe: step $name failed (exit $rc); run again to resume" >&2; exit 1; }
  printf '%s\t%s\n' "$name" $((SECONDS - start)) | tee -a "$OUT/steps.tsv"
  touch "$OUT/steps/$name.done"
}

# The training prompts are decontaminated against the test set.
run_step sample rsr run "$dir/sample.yaml" "work_dir=$OUT/sample" "data.input_path=$TRAIN" \
  "data.decontaminate.benchmarks=[$TEST]"

# The rows rsr wrote to an export, from its manifest.
rows() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['rows'])" "$1.manifest.json"; }
export_() {
  local x="$OUT/exports"
  mkdir -p "$x"
  rsr export "$OUT/sample" --formatter sft --format trl_prompt_completion -o "$x/sft.jsonl"
  rsr export "$OUT/sample" --formatter sft --format sharegpt -o "$x/sft.sharegpt.jsonl"
  local checks=("$x/sft.jsonl" sft "$(rows "$x/sft.jsonl")")
  if [ -f "$dir/trl_dpo.yaml" ]; then
    rsr export "$OUT/sample" --formatter dpo --format trl -o "$x/dpo.jsonl"
    rsr export "$OUT/sample" --formatter dpo --format sharegpt -o "$x/dpo.sharegpt.jsonl"
    checks+=("$x/dpo.jsonl" dpo "$(rows "$x/dpo.jsonl")")
  fi
  cp recipes/gpu/dataset_info.json "$x/"
  # TRL takes each file as written (no row dropped, no format warning).
  "$py" recipes/cpu-loop/loop.py check --model "$student" --scratch "$OUT/scratch" "${checks[@]}"
}
run_step export export_

run_step sft trl sft --config "$dir/trl_sft.yaml"
models=("base=$student" "sft=$OUT/sft")
if [ -f "$dir/trl_dpo.yaml" ]; then
  run_step dpo trl dpo --config "$dir/trl_dpo.yaml"
  models+=("dpo=$OUT/dpo")
fi

dirs=()
for m in "${models[@]}"; do
  name="${m%%=*}" path="${m#*=}"
  run_step "eval-$name" rsr run "$dir/eval.yaml" "work_dir=$OUT/eval/$name" "data.input_path=$TEST" \
    sampler.type=vllm "sampler.model=$name" "sampler.model_path=$path"
  dirs+=("$OUT/eval/$name")
done
rsr compare "${dirs[@]}" --out "$OUT/compare" | tee "$OUT/compare.txt"
if [ "$recipe" = chat-judge ]; then
  # A rating N scores (N - 1) / 9: the mean rating is the finer number.
  for d in "${dirs[@]}"; do
    echo "$d: mean rating $(rsr -q sql "$d" "SELECT round(avg(score) * 9 + 1, 3) FROM results WHERE valid" --format csv | tail -1)" \
      | tee -a "$OUT/compare.txt"
  done
fi
