"""Prompt and benchmark files for benches/hygiene.sh.

    python3 benches/gen_hygiene.py OUT_DIR PROMPTS [BENCHMARK_PROBLEMS]

Text is drawn from a word-bigram model of the shipped GSM8K and MATH samples
(questions and worked solutions), with two words in five drawn from the whole
vocabulary and every number drawn again, so prompts read like math word problems,
compress like prose and rarely share long runs by chance. Planted among the
prompts, to check what the checks find:
  - 0.5% copies of a benchmark problem (case and spacing changed),
  - 0.5% paraphrases keeping a 12-word run of a benchmark problem,
  - 2% exact copies of an earlier prompt (case and punctuation changed),
  - 2% near copies of an earlier prompt (one word in 40 replaced).
Writes OUT_DIR/prompts.jsonl (id, prompt, answer), OUT_DIR/bench.jsonl
(problem) and OUT_DIR/planted.json (the counts).
"""

import json
import random
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
out = Path(sys.argv[1])
n_prompts = int(sys.argv[2])
n_bench = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
rng = random.Random(7)

texts = []
for name, keys in [
    ("tests/fixtures/gsm8k_sample.jsonl", ("question", "answer")),
    ("tests/fixtures/math500_sample.jsonl", ("problem", "solution")),
    ("examples/data/gsm8k_50.jsonl", ("question", "answer")),
    ("examples/data/math500_50.jsonl", ("problem", "solution")),
]:
    for line in open(root / name):
        row = json.loads(line)
        for k in keys:
            if isinstance(row.get(k), str):
                # Asymptote diagrams are code, not prose.
                texts.append(re.sub(r"\[asy\].*?\[/asy\]", " ", row[k], flags=re.S))
words = [w for t in texts for w in t.split()]
vocab = sorted(set(words))
follow = {}
for a, b in zip(words, words[1:]):
    follow.setdefault(a, []).append(b)
starts = [w for w in vocab if w[:1].isupper()]


def redraw(w):
    """Every number in a word drawn again (2..999)."""
    return re.sub(r"\d+", lambda _: str(rng.randint(2, 999)), w)


def text(lo=25, hi=90):
    n = rng.randint(lo, hi)
    w = rng.choice(starts)
    out = [w]
    for _ in range(n - 1):
        nxt = follow.get(w)
        w = rng.choice(vocab) if not nxt or rng.random() < 0.4 else rng.choice(nxt)
        out.append(redraw(w))
    return " ".join(out) + "?"


out.mkdir(parents=True, exist_ok=True)
bench = [text() for _ in range(n_bench)]
with open(out / "bench.jsonl", "w") as f:
    for b in bench:
        f.write(json.dumps({"problem": b}) + "\n")

planted = {"benchmark_copies": 0, "benchmark_paraphrases": 0, "exact_duplicates": 0, "near_duplicates": 0}
prompts = []
with open(out / "prompts.jsonl", "w") as f:
    for i in range(n_prompts):
        r = rng.random()
        if r < 0.005:
            t = "  ".join(rng.choice(bench).upper().split(" "))
            planted["benchmark_copies"] += 1
        elif r < 0.010:
            src = rng.choice(bench).split()
            at = rng.randint(0, len(src) - 12)
            t = text(8, 20)[:-1] + ", " + " ".join(src[at : at + 12]) + " " + text(8, 20)
            planted["benchmark_paraphrases"] += 1
        elif r < 0.030 and prompts:
            t = rng.choice(prompts).lower().replace("?", " ?!").replace(" ", "  ")
            planted["exact_duplicates"] += 1
        elif r < 0.050 and prompts:
            src = rng.choice(prompts).split()
            for j in rng.sample(range(len(src)), max(1, len(src) // 40)):
                src[j] = rng.choice(vocab)
            t = " ".join(src)
            planted["near_duplicates"] += 1
        else:
            t = text()
        # Earlier prompts to copy from: a bounded sample keeps memory flat.
        if len(prompts) < 50_000:
            prompts.append(t)
        elif rng.random() < 0.01:
            prompts[rng.randrange(len(prompts))] = t
        f.write(json.dumps({"id": f"p{i}", "prompt": t, "answer": str(rng.randint(1, 999))}) + "\n")
(out / "planted.json").write_text(json.dumps(planted, indent=2) + "\n")
print(json.dumps(planted))
