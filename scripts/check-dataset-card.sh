#!/usr/bin/env bash
# Checks the dataset cards rsr writes the way the Hugging Face Hub reads
# them: runs the bundled example (train/README.md), exports two files into
# a directory of their own (hf/README.md), and parses each card with
# huggingface_hub's DatasetCard, offline, checking that every data_files
# path exists and every row count matches its file.
#
# Needs python3 with venv and PyPI (huggingface_hub goes into a venv cached
# in ~/.cache/rsr-card-venv). The binaries come from $CARGO_TARGET_DIR
# (default target/), built here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --bins
export PATH="$(cd "$target" && pwd)/debug:$PATH"

venv="$HOME/.cache/rsr-card-venv"
if ! "$venv/bin/python" -c 'import huggingface_hub' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "huggingface_hub>=0.24,<2"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rsr run examples/gsm8k.yaml work_dir="$work/run" formatter.1.type=dpo card.license=mit \
  card.language='[en]' >/dev/null 2>&1
rsr export "$work/run" --format sharegpt -o "$work/hf/sft.sharegpt.jsonl" 2>/dev/null
rsr export "$work/run" --formatter dpo -o "$work/hf/dpo.parquet" 2>/dev/null

HF_HUB_OFFLINE=1 "$venv/bin/python" - "$work/run/train" "$work/hf" <<'PY'
import json, os, sys
from huggingface_hub import DatasetCard

def rows(path):
    """JSON Lines rows; None for Parquet (its count is checked by rsr's tests)."""
    if path.endswith(".parquet"):
        return None
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)

checked = 0
for d in sys.argv[1:]:
    card = DatasetCard.load(os.path.join(d, "README.md"))
    data = card.data.to_dict()
    assert data["license"], data
    assert data["task_categories"] == ["text-generation"], data
    infos = {i["config_name"]: i for i in data["dataset_info"]}
    for c in data["configs"]:
        for f in c["data_files"]:
            path = os.path.join(d, f["path"])
            assert os.path.isfile(path), f"{path} named by the card does not exist"
            n = rows(path)
            expected = infos[c["config_name"]]["splits"][0]["num_examples"]
            assert n is None or n == expected, (path, n, expected)
            checked += 1
print(f"dataset cards: {checked} files checked with huggingface_hub")
PY
