#!/usr/bin/env bash
# rsr view in a real browser: headless Chromium (Debian's `chromium`,
# installed with apt-get when missing) loads each page against a small work
# dir and the rendered DOM is checked: rows present, the extracted answer
# marked, verdicts of a second source shown, and responses holding
# `<script>alert(1)</script>` and `<img src=x onerror=alert(1)>` shown as
# text, never run.
#
#   bash scripts/view-browser-test.sh              # check
#   SCREENSHOTS=1 bash scripts/view-browser-test.sh   # and write docs/view-*.png
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "view-browser-test: FAILED: $*" >&2; exit 1; }

find_browser() {
  command -v chromium || command -v chromium-browser || command -v google-chrome \
    || command -v google-chrome-stable || true
}
browser=$(find_browser)
if [ -z "$browser" ]; then
  echo "== installing chromium (apt-get)"
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium > /dev/null; } \
    || fail "chromium is missing and apt-get cannot install it"
  browser=$(find_browser)
  [ -n "$browser" ] || fail "chromium was installed but is not on PATH"
fi

cargo build --quiet --bins
dir="${CARGO_TARGET_DIR:-target}/debug"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# A run of the GSM8K sample replayed from saved responses: per prompt a
# right one with its thinking, and one holding markup with a wrong answer.
"$dir/rsr" -q prepare work_dir="$work/run" data.input_path=tests/fixtures/gsm8k_sample.jsonl \
  data.preprocess.transform=gsm8k sampler.type=replay "sampler.replay_path=$work/responses.jsonl" \
  sampling.max_rollouts=2 sampling.step_size=2 sampling.early_stop=false
"$dir/rsr" -q sql "$work/run" "SELECT id, answer FROM inputs ORDER BY id" --format jsonl |
  python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    right = {"id": r["id"], "response": "<think>Adding it up step by step.</think>So the total is \\boxed{%s}." % r["answer"]}
    xss = {"id": r["id"], "response": "<script>alert(1)</script> <img src=x onerror=alert(1)> The answer is \\boxed{%d}." % (int(r["answer"]) + 1)}
    print(json.dumps(right)); print(json.dumps(xss))
' > "$work/responses.jsonl"
"$dir/rsr" -q sample work_dir="$work/run"
"$dir/rsr-mock" --port 0 --judge-accuracy 0.6 > "$work/mock.out" &
pids+=($!)
until grep -q listening "$work/mock.out" 2> /dev/null; do sleep 0.05; done
mock="$(sed -n 's/^listening on //p' "$work/mock.out")/v1"
"$dir/rsr" -q verify "$work/run" verifier.type=llm-judge "judge.base_url=$mock" judge.model=mock
"$dir/rsr" -q analyze "$work/run" > /dev/null

"$dir/rsr" view "$work/run" > "$work/view.out" &
pids+=($!)
until grep -q 'rsr view:' "$work/view.out" 2> /dev/null; do sleep 0.05; done
url=$(sed -n 's/^rsr view: \(http[^ ]*\) .*/\1/p' "$work/view.out")

chrome() { # url [screenshot]
  local args=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    "--user-data-dir=$work/chrome" --window-size=1280,1100 --virtual-time-budget=8000)
  if [ -n "${2:-}" ]; then
    "$browser" "${args[@]}" "--screenshot=$2" "$1" > /dev/null 2>&1
  else
    "$browser" "${args[@]}" --dump-dom "$1" 2> /dev/null
  fi
}

dom=$(chrome "${url}#/prompts")
rows=$(grep -o 'data-id="gsm8k-[0-9]*"' <<< "$dom" | sort -u | wc -l)
[ "$rows" -eq 26 ] || fail "the prompts page shows $rows of 26 prompts"
grep -q 'class="flag">yes<' <<< "$dom" || fail "no prompt flagged with disagreeing verdict sources"

xss_id=gsm8k-3
dom=$(chrome "${url}#/prompt/$xss_id")
cards=$(grep -o 'class="card rollout"' <<< "$dom" | wc -l)
[ "$cards" -eq 2 ] || fail "the prompt page shows $cards of 2 rollouts"
grep -q '<mark class="extracted">' <<< "$dom" || fail "the extracted answer is not marked"
grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' <<< "$dom" || fail "the <script> of a response is not shown as text"
grep -q '&lt;img src=x onerror=alert(1)&gt;' <<< "$dom" || fail "the <img onerror> of a response is not shown as text"
if grep -qi '<img src="x"\|<script>alert' <<< "$dom"; then fail "model text became markup"; fi
grep -q '<td>llm-judge</td>' <<< "$dom" || fail "the judge's verdicts are not shown"
grep -q '<details><summary>thinking' <<< "$dom" || fail "the thinking is not folded"

dom=$(chrome "${url}#/disagreements")
grep -q 'id="disagreements"' <<< "$dom" || fail "the disagreements page did not render"
grep -q 'href="#/prompt/gsm8k-' <<< "$dom" || fail "the disagreements page lists no rollout"
dom=$(chrome "${url}#/no-answer")
grep -q 'id="no-answer"' <<< "$dom" || fail "the no-answer page did not render"
dom=$(chrome "${url}report")
grep -q 'rsr report' <<< "$dom" || fail "the run's report did not render"
grep -q 'data:image/png;base64' <<< "$dom" || fail "the report has no charts"

if [ -n "${SCREENSHOTS:-}" ]; then
  chrome "${url}#/prompts" docs/view-prompts.png
  chrome "${url}#/prompt/$xss_id" docs/view-prompt.png
  chrome "${url}#/disagreements" docs/view-disagreements.png
  chrome "${url}#/run" docs/view-run.png
  echo "screenshots: docs/view-prompts.png docs/view-prompt.png docs/view-disagreements.png docs/view-run.png"
fi
echo "view-browser-test: PASSED (prompts, one prompt with markup shown as text, disagreements, no answer, the run)"
