"""Agreement and speed of rsr's `ifeval` verifier against the reference checker.

Input: a JSON Lines file exported from an rsr work dir (see agreement.sh) with,
per response: `id` (`ifeval-<key>`), `messages`, `answer` (the stored gold:
`instruction_id_list` and `kwargs`), `response` (the final part, thinking
removed) and `pred` (rsr's per-instruction outcomes,
`id=followed|loose|failed`). The reference is Google's checker as lm-eval
ships it (`lm_eval/tasks/ifeval/`), run with `langdetect` seeded with 0 and
nltk's English punkt parameters. Prints agreement per instruction id, strict
and loose, every disagreement, and the reference's responses per second on
one core.

    python agreement.py REF_DIR responses.jsonl [label]
"""

import collections
import json
import sys
import time

ref_dir, path = sys.argv[1], sys.argv[2]
label = sys.argv[3] if len(sys.argv) > 3 else path
sys.path.insert(0, ref_dir)
import langdetect  # noqa: E402

langdetect.DetectorFactory.seed = 0
from lm_eval.tasks.ifeval import instructions_registry  # noqa: E402

# Prompts whose kwargs make the reference draw a random value (a letter that
# is not a letter): its verdict is not reproducible, so they are left out.
RANDOM_KWARGS = {1122, 1129}


def variants(response):
    lines = response.split("\n")
    out = [
        response,
        response.replace("*", ""),
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return out + [r.replace("*", "") for r in out[2:]]


def reference(row):
    """Strict and loose per instruction, as lm-eval's utils.py computes them."""
    response = row["response"]
    loose_responses = variants(response)
    out = []
    for index, iid in enumerate(row["instruction_id_list"]):
        inst = instructions_registry.INSTRUCTION_DICT[iid](iid)
        kwargs = {k: v for k, v in row["kwargs"][index].items() if v is not None}
        inst.build_description(**kwargs)
        args = inst.get_instruction_args()
        if args and "prompt" in args:
            inst.build_description(prompt=row["prompt"])
        strict = bool(response.strip() and inst.check_following(response))
        loose = strict or any(r.strip() and inst.check_following(r) for r in loose_responses)
        out.append((strict, loose))
    return out


rows = []
for line in open(path, encoding="utf-8"):
    r = json.loads(line)
    gold = json.loads(r["answer"])
    r["key"] = int(r["id"].rsplit("-", 1)[1])
    r["prompt"] = json.loads(r["messages"])[-1]["content"]
    r["instruction_id_list"], r["kwargs"] = gold["instruction_id_list"], gold["kwargs"]
    rows.append(r)
rows = [r for r in rows if r["key"] not in RANDOM_KWARGS and r.get("response") is not None and r.get("pred")]
start = time.process_time()
ref = [reference(r) for r in rows]
ref_seconds = time.process_time() - start

per_id = collections.defaultdict(lambda: [0, 0, 0])  # count, strict agree, loose agree
disagreements = []
for row, outcomes in zip(rows, ref):
    rsr = []
    for item in row["pred"].split(" "):
        iid, word = item.rsplit("=", 1)
        rsr.append((word == "followed", word in ("followed", "loose")))
    for iid, r, p in zip(row["instruction_id_list"], outcomes, rsr):
        c = per_id[iid]
        c[0] += 1
        c[1] += r[0] == p[0]
        c[2] += r[1] == p[1]
        if r != p:
            disagreements.append((row["key"], iid, r, p, row["response"][:300]))

total = [sum(c[i] for c in per_id.values()) for i in range(3)]
print(f"## {label}: {len(rows)} responses, {total[0]} instructions")
print(f"agreement: strict {total[1]}/{total[0]} ({100 * total[1] / total[0]:.2f}%), "
      f"loose {total[2]}/{total[0]} ({100 * total[2] / total[0]:.2f}%)")
print(f"reference: {ref_seconds:.2f} s CPU for strict+loose, {len(rows) / ref_seconds:.1f} responses/s on one core")
print("| instruction id | n | strict agree | loose agree |")
print("|---|---:|---:|---:|")
for iid, (n, s, l) in sorted(per_id.items()):
    print(f"| {iid} | {n} | {s} | {l} |")
for key, iid, r, p, text in disagreements:
    print(f"DISAGREE key={key} {iid} reference(strict,loose)={r} rsr={p}: {text!r}")
json.dump({"responses": len(rows), "instructions": total[0], "strict_agree": total[1],
           "loose_agree": total[2], "reference_cpu_seconds": ref_seconds},
          open(path + ".agreement.json", "w"))
