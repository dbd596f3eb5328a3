"""Records the cases of Google's IFEval unit tests as data for rsr's own tests.

Runs `instructions_test.py` and `instructions_util_test.py` of Google's
`instruction_following_eval` (google-research on GitHub, Apache-2.0) with every
checker wrapped, and writes each check the tests make, with the reference's
verdict, one JSON object per line:

    {"id": "...", "kwargs": {...}, "response": "...", "followed": true}
    {"count": "words" | "sentences", "text": "...", "value": 4}

Usage (in a venv with absl-py, langdetect, nltk 3.9.x, immutabledict, and
NLTK_DATA holding tokenizers/punkt_tab/english):
    python benches/ifeval/record_unit_cases.py DIR_WITH_instruction_following_eval OUT.jsonl
"""

import json
import os
import sys
import unittest

root, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
import langdetect  # noqa: E402

langdetect.DetectorFactory.seed = 0
from instruction_following_eval import instructions, instructions_registry, instructions_util  # noqa: E402

ids = {cls: id for id, cls in instructions_registry.INSTRUCTION_DICT.items()}
cases = []

for cls in ids:
    original = cls.check_following

    def wrapped(self, value, _original=original, _cls=cls):
        result = _original(self, value)
        args = self.get_instruction_args() or {}
        cases.append({"id": ids[_cls], "kwargs": args, "response": value, "followed": bool(result)})
        return result

    cls.check_following = wrapped

for name in ("count_words", "count_sentences"):
    original = getattr(instructions_util, name)

    def counted(text, _original=original, _name=name):
        value = _original(text)
        cases.append({"count": _name.removeprefix("count_"), "text": text, "value": value})
        return value

    setattr(instructions_util, name, counted)

loader = unittest.TestLoader()
suite = unittest.TestSuite()
for module in ("instructions_test", "instructions_util_test"):
    suite.addTests(loader.loadTestsFromName(f"instruction_following_eval.{module}"))
result = unittest.TextTestRunner(verbosity=0).run(suite)
seen = set()
with open(out, "w", encoding="utf-8") as f:
    for c in cases:
        key = json.dumps(c, sort_keys=True)
        if key not in seen:
            seen.add(key)
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
print(f"{len(seen)} cases; tests run {result.testsRun}, failures {len(result.failures)}, errors {len(result.errors)}")
