"""Writes the loop's word problems: a training split and a held-out test split.

    python make_data.py OUT_DIR N_TRAIN N_TEST [SEED]

GSM8K's format (`question`, `answer` ending in `#### N`), so `rsr`'s
`gsm8k` transform reads them. One-step problems over small whole numbers (add,
take away, groups of, share equally; 85%) and two-step ones (15%), drawn
from a seeded generator: the same arguments give the same files. The two splits
share no question; a test problem is new to the model in its numbers and
names, not in its kind, which is what a 135M model can learn from a few
hundred examples.
"""

import json
import os
import random
import sys

NAMES = [
    "Tom", "Ana", "Ben", "Maya", "Leo", "Sara", "Omar", "Lina", "Ivan", "Priya",
    "Kofi", "Mei", "Jonas", "Elena", "Raj", "Nora", "Diego", "Yuki", "Amir", "Zoe",
]
ITEMS = [
    "apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps",
    "shells", "cards", "coins", "flowers", "candies", "toy cars", "beads",
]
CONTAINERS = ["boxes", "bags", "jars", "baskets", "packs", "rows"]


def one_step(rng):
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.choice(["add", "sub", "mul", "div"])
    if kind == "add":
        a, b = rng.randint(2, 20), rng.randint(2, 12)
        q = rng.choice([
            f"{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?",
            f"{name} had {a} {item} and found {b} more. How many {item} does {name} have in total?",
        ])
        return q, f"{a} + {b} = {a + b}", a + b
    if kind == "sub":
        a = rng.randint(6, 30)
        b = rng.randint(1, a - 2)
        q = rng.choice([
            f"{name} has {a} {item} and gives {b} of them away. How many {item} does {name} have left?",
            f"There were {a} {item} on the table. {name} took {b} of them. How many {item} are still on the table?",
        ])
        return q, f"{a} - {b} = {a - b}", a - b
    box = rng.choice(CONTAINERS)
    if kind == "mul":
        a, b = rng.randint(2, 6), rng.randint(2, 6)
        q = f"{name} has {a} {box} with {b} {item} in each. How many {item} does {name} have in total?"
        return q, f"{a} * {b} = {a * b}", a * b
    b, c = rng.randint(2, 5), rng.randint(2, 6)
    a = b * c
    q = f"{name} shares {a} {item} equally among {b} friends. How many {item} does each friend get?"
    return q, f"{a} / {b} = {c}", c


def two_step(rng):
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    box = rng.choice(CONTAINERS)
    kind = rng.choice(["mul_add", "add_sub", "mul_sub"])
    if kind == "mul_add":
        a, b, c = rng.randint(2, 5), rng.randint(2, 5), rng.randint(1, 9)
        q = (f"{name} has {a} {box} with {b} {item} in each and {c} loose {item}. "
             f"How many {item} does {name} have altogether?")
        return q, f"{a} * {b} = {a * b}\n{a * b} + {c} = {a * b + c}", a * b + c
    if kind == "add_sub":
        a, b = rng.randint(3, 15), rng.randint(2, 9)
        c = rng.randint(1, a + b - 1)
        q = (f"{name} had {a} {item}, bought {b} more, then gave {c} to a friend. "
             f"How many {item} does {name} have now?")
        return q, f"{a} + {b} = {a + b}\n{a + b} - {c} = {a + b - c}", a + b - c
    a, b = rng.randint(2, 5), rng.randint(2, 5)
    c = rng.randint(1, a * b - 1)
    q = (f"{name} buys {a} {box} of {item} with {b} in each box and uses {c} of them. "
         f"How many {item} are left?")
    return q, f"{a} * {b} = {a * b}\n{a * b} - {c} = {a * b - c}", a * b - c


def problems(rng):
    seen = set()
    while True:
        q, work, n = (one_step if rng.random() < 0.85 else two_step)(rng)
        if q not in seen:
            seen.add(q)
            yield {"question": q, "answer": f"{work}\n#### {n}"}


def write(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


def main():
    out, n_train, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 2026
    rng = random.Random(seed)
    gen = problems(rng)
    rows = [next(gen) for _ in range(n_train + n_test)]
    os.makedirs(out, exist_ok=True)
    # The test split comes first from the stream, so a larger training
    # split keeps the same test problems.
    write(os.path.join(out, "test.jsonl"), rows[:n_test])
    write(os.path.join(out, "train.jsonl"), rows[n_test:])
    print(f"wrote {n_train} training and {n_test} test problems to {out}")


if __name__ == "__main__":
    main()
