#!/usr/bin/env bash
# The whole loop on a CPU machine: data -> sampling -> training ->
# evaluation, with SmolLM2-135M-Instruct on llama-server.
#
#   bash recipes/cpu-loop/run.sh            # the full run (about 65 min on 2 cores)
#   SMOKE=1 bash recipes/cpu-loop/run.sh    # a few prompts and steps (minutes)
#
# Steps (each recorded in $OUT/steps.tsv with its wall time, and skipped
# when a rerun finds it done; rsr's own steps resume inside a step too):
#   setup    llama-server and the model (scripts/llama-cpu.sh), the Python
#            venv from requirements.txt, rsr
#   data     word problems: a training split and a held-out test split
#   base     the base weights out of the GGUF (transformers' GGUF loading),
#            converted back by llama.cpp's converter (q8_0), the same route
#            the trained weights take, so base and trained differ only by
#            training
#   sample   rsr samples the training split (recipes/cpu-loop/sample.yaml)
#   export   rsr's SFT and DPO exports, and the check that TRL takes each
#            as written (loop.py check: fails on a rejected file, a dropped
#            row or a warning about the format)
#   sft      TRL SFTTrainer on the passing responses, then GGUF
#   dpo      TRL DPOTrainer on passing vs failing pairs, then GGUF (DPO=0: off)
#   eval     rsr evaluates each model on the test split: greedy
#            (configs/eval/gsm8k.yaml) and, for base and sft, pass@k at
#            temperature 0.6 on the first N_PASSK test problems
#   compare  rsr compare: accuracy, interval and paired difference
#
# Settings (environment): OUT (default output/cpu-loop), N_TRAIN (300),
# N_TEST (200), K (4), N_PASSK (100: pass@k on the first 100 test problems),
# EPOCHS (3), LR (2e-5), DPO (1), DPO_EPOCHS (1: a DPO step costs about three
# SFT steps), DPO_LR (5e-6),
# LOOP_VENV (~/.cache/rsr-loop-venv), E2E_CACHE (~/.cache/rsr-e2e), RSR
# (an rsr binary; default: cargo build). Fails (non-zero, the step named)
# at the first step that fails; run it again to resume.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=recipes/cpu-loop

smoke="${SMOKE:-0}"
if [ "$smoke" = 1 ]; then
  OUT="${OUT:-output/cpu-loop-smoke}"
  N_TRAIN="${N_TRAIN:-16}" N_TEST="${N_TEST:-12}" K="${K:-2}" N_PASSK="${N_PASSK:-12}"
  max_steps=3 max_tokens=256
else
  OUT="${OUT:-output/cpu-loop}"
  N_TRAIN="${N_TRAIN:-300}" N_TEST="${N_TEST:-200}" K="${K:-4}" N_PASSK="${N_PASSK:-100}"
  max_steps=-1 max_tokens=384
fi
EPOCHS="${EPOCHS:-3}" LR="${LR:-2e-5}" DPO="${DPO:-1}" DPO_EPOCHS="${DPO_EPOCHS:-1}" DPO_LR="${DPO_LR:-5e-6}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/loop.log") 2>&1

cache="${E2E_CACHE:-$HOME/.cache/rsr-e2e}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
fail() { echo "cpu-loop: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }
pip_() { python3 -m pip --disable-pip-version-check --no-input -q "$@"; }

# A step runs once: its marker records the seconds it took.
steps="$OUT/steps.tsv"
done_() { [ -f "$OUT/steps/$1.done" ]; }
run_step() { # name command...
  local name="$1"; shift
  if done_ "$name"; then
    echo "== $name: done before ($(cat "$OUT/steps/$name.done") s), skipped"
    return
  fi
  step "$name"
  local start=$SECONDS
  # In a subshell of its own, not under `||`: errexit holds inside the step.
  set +e
  (set -e; "$@")
  local rc=$?
  set -e
  [ "$rc" = 0 ] || fail "step $name (exit $rc; see $OUT/loop.log); run the script again to resume"
  mkdir -p "$OUT/steps"
  echo $((SECONDS - start)) > "$OUT/steps/$name.done"
  printf '%s\t%s\n' "$name" $((SECONDS - start)) >> "$steps"
}

echo "cpu-loop $(date -u +%FT%TZ): OUT=$OUT SMOKE=$smoke N_TRAIN=$N_TRAIN N_TEST=$N_TEST K=$K N_PASSK=$N_PASSK EPOCHS=$EPOCHS LR=$LR DPO=$DPO DPO_EPOCHS=$DPO_EPOCHS DPO_LR=$DPO_LR"

setup() {
  # shellcheck source=scripts/llama-cpu.sh
  source scripts/llama-cpu.sh
  local venv="${LOOP_VENV:-$HOME/.cache/rsr-loop-venv}"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
    step "installing $here/requirements.txt into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --disable-pip-version-check -q -r "$here/requirements.txt" \
      || fail "cannot install $here/requirements.txt from PyPI: is the registry reachable?"
    cp "$here/requirements.txt" "$venv/requirements.txt"
  fi
  if [ -z "${RSR:-}" ]; then
    cargo build --quiet --bins
    RSR="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/rsr"
  fi
  # Later steps (and a resumed run) read the paths from here.
  cat > "$OUT/env.sh" <<EOF
server='$server'
gguf='$gguf'
converter='$srcdir/convert_hf_to_gguf.py'
py='$venv/bin/python'
rsr='$RSR'
EOF
}
# setup runs every time (it is fast when everything is cached): the paths
# may have moved since the last run.
step setup
start=$SECONDS
setup
printf '%s\t%s\n' setup $((SECONDS - start)) >> "$steps"
# shellcheck source=/dev/null
source "$OUT/env.sh"
# The converter reads its own copy of the gguf package (gguf-py in the same
# sources): PyPI's gguf 0.19.0 predates what this converter calls
# (gguf.LazyChunkedTensor). transformers reads GGUF with PyPI's.
unset NO_LOCAL_GGUF
loop() { "$py" "$here/loop.py" "$@" --scratch "$OUT/scratch"; }
to_gguf() { # hf_dir out.gguf
  "$py" "$converter" "$1" --outtype q8_0 --outfile "$2.tmp" > "$2.log" 2>&1 \
    || { tail -20 "$2.log"; return 1; }
  mv "$2.tmp" "$2"
  echo "converted $1 -> $2 ($(du -h "$2" | cut -f1))"
}

run_step data python3 "$here/make_data.py" "$OUT/data" "$N_TRAIN" "$N_TEST"

base_model() {
  mkdir -p "$OUT/models"
  rm -rf "$OUT/models/base-hf"
  loop base "$gguf" "$OUT/models/base-hf"
  to_gguf "$OUT/models/base-hf" "$OUT/models/base.q8_0.gguf"
}
run_step base base_model

sample() {
  "$rsr" run "$here/sample.yaml" "work_dir=$OUT/sample" "data.input_path=$OUT/data/train.jsonl" \
    "sampler.model_path=$OUT/models/base.q8_0.gguf" "sampler.server_bin=$server" \
    "sampler.max_tokens=$max_tokens"
}
run_step sample sample

rows() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['rows'])" "$1.manifest.json"; }
export_() {
  local x="$OUT/exports"
  rm -rf "$x"; mkdir -p "$x"
  "$rsr" export "$OUT/sample" --formatter sft --format trl -o "$x/sft.messages.jsonl"
  "$rsr" export "$OUT/sample" --formatter sft --format trl_prompt_completion -o "$x/sft.prompt_completion.jsonl"
  "$rsr" export "$OUT/sample" --formatter dpo --format trl -o "$x/dpo.jsonl"
  loop check --model "$OUT/models/base-hf" \
    "$x/sft.messages.jsonl" sft "$(rows "$x/sft.messages.jsonl")" \
    "$x/sft.prompt_completion.jsonl" sft "$(rows "$x/sft.prompt_completion.jsonl")" \
    "$x/dpo.jsonl" dpo "$(rows "$x/dpo.jsonl")"
}
run_step export export_

train() { # kind data from lr epochs
  rm -rf "$OUT/models/$1-hf"
  loop "$1" "$2" "$3" "$OUT/models/$1-hf" --epochs "$5" --lr "$4" --max-steps "$max_steps"
  to_gguf "$OUT/models/$1-hf" "$OUT/models/$1.q8_0.gguf"
}
# SFT on the prompt-completion export: the loss on the answer only.
run_step sft train sft "$OUT/exports/sft.prompt_completion.jsonl" "$OUT/models/base-hf" "$LR" "$EPOCHS"
models=(base sft)
if [ "$DPO" = 1 ]; then
  run_step dpo train dpo "$OUT/exports/dpo.jsonl" "$OUT/models/base-hf" "$DPO_LR" "$DPO_EPOCHS"
  models+=(dpo)
fi

evaluate() { # model
  local m="$1" gguf_m="$OUT/models/$1.q8_0.gguf"
  "$rsr" run configs/eval/gsm8k.yaml "work_dir=$OUT/eval/greedy/$m" \
    "data.input_path=$OUT/data/test.jsonl" sampler.type=llama-cpp "sampler.model=$m" \
    "sampler.model_path=$gguf_m" "sampler.server_bin=$server" sampler.concurrent_requests=8 \
    "sampler.max_tokens=$max_tokens"
  # pass@k costs k times greedy: base and sft only, on the first N_PASSK.
  [ "$m" = dpo ] && return
  "$rsr" run configs/eval/gsm8k.yaml "work_dir=$OUT/eval/pass-at-$K/$m" \
    "data.input_path=$OUT/data/test.jsonl" "data.limit=$N_PASSK" sampler.type=llama-cpp "sampler.model=$m" \
    "sampler.model_path=$gguf_m" "sampler.server_bin=$server" sampler.concurrent_requests=8 \
    "sampler.max_tokens=$max_tokens" sampler.temperature=0.6 \
    "sampling.max_rollouts=$K" "sampling.step_size=$K"
}
for m in "${models[@]}"; do
  run_step "eval-$m" evaluate "$m"
done

compare() {
  for e in greedy "pass-at-$K"; do
    local dirs=()
    for m in "${models[@]}"; do
      [ -d "$OUT/eval/$e/$m" ] && dirs+=("$OUT/eval/$e/$m")
    done
    "$rsr" compare "${dirs[@]}" --out "$OUT/compare/$e" | tee "$OUT/compare/$e.txt"
  done
}
# Not a recorded step: it takes seconds and reads whatever eval now holds.
step compare
mkdir -p "$OUT/compare"
compare

step "steps and their wall time (s)"
cat "$steps"
echo "cpu-loop: done; results in $OUT/compare/"
