"""Math-Verify beside rsr's math-rlvr: agreement on the verifier corpus, by
class, and throughput on the benchmark's responses.

    pip install math-verify
    python3 benches/peer_math_verify.py                      # agreement
    RSR_BENCH_CASES=/tmp/cases.jsonl cargo bench --bench verifiers
    python3 benches/peer_math_verify.py /tmp/cases.jsonl     # + throughput

Math-Verify is called the way its README shows: the gold wrapped in
`\\boxed{}` and parsed, the response parsed with the default LaTeX and
expression extraction, then `verify(gold, answer)`. rsr's numbers for the
same cases come from `cargo test --test verifier_corpus -- --nocapture`
and `cargo bench --bench verifiers`.
"""
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

CONFIG = [LatexExtractionConfig(), ExprExtractionConfig()]
CORPUS = Path(__file__).resolve().parent.parent / "tests/fixtures/verifier_corpus"


def score(response: str, gold: str) -> float:
    try:
        g = parse("\\boxed{" + gold + "}", extraction_config=CONFIG)
        return 1.0 if verify(g, parse(response, extraction_config=CONFIG)) else 0.0
    except Exception:  # a parse or timeout error is a fail, as in its own metric
        return 0.0


def agreement() -> None:
    print("| class | Math-Verify agrees | cases |")
    print("|---|---|---|")
    total = [0, 0]
    for path in sorted(CORPUS.glob("math-*.jsonl")):
        ok = n = 0
        for line in path.read_text().splitlines():
            case = json.loads(line)
            n += 1
            ok += score(case["response"], case["gold"]) == case["expected"]
        print(f"| {path.stem} | {ok} ({100 * ok / n:.1f}%) | {n} |")
        total[0] += ok
        total[1] += n
    print(f"| all | {total[0]} ({100 * total[0] / total[1]:.1f}%) | {total[1]} |")


def throughput(cases_file: str) -> None:
    cases = [json.loads(l) for l in Path(cases_file).read_text().splitlines()]
    start = time.perf_counter()
    passed = sum(score(c["response"], c["gold"]) for c in cases)
    elapsed = time.perf_counter() - start
    print(
        f"Math-Verify: {len(cases)} responses, {len(cases) / elapsed:.0f} responses/s "
        f"on 1 core, {100 * passed / len(cases):.0f}% passed"
    )


if __name__ == "__main__":
    agreement()
    if len(sys.argv) > 1:
        throughput(sys.argv[1])
