"""Records reference answers on real text as fixtures for rsr's unit tests.

- `langdetect_cases.jsonl`: generated texts (langdetect_agreement.py) with
  `langdetect.detect` seeded with 0 (null where it raises).
- `nltk_cases.jsonl`: model responses (a JSONL export with `response`) with
  nltk 3.9.1's English punkt sentence count, `len(re.findall(r"\\w+"))`, and
  the number of `nltk.word_tokenize` tokens that are `str.isupper()`.

    python record_reference_cases.py TEXTS.jsonl RESPONSES.jsonl OUT_DIR [N]
"""

import json
import re
import sys

import nltk
from langdetect import DetectorFactory, detect
from langdetect.lang_detect_exception import LangDetectException

DetectorFactory.seed = 0
texts, responses, out = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 300
punkt = nltk.tokenize.PunktTokenizer("english")

with open(f"{out}/langdetect_cases.jsonl", "w", encoding="utf-8") as f:
    for line in list(open(texts, encoding="utf-8"))[:n]:
        t = json.loads(line)["messages"][0]["content"]
        try:
            lang = detect(t)
        except LangDetectException:
            lang = None
        f.write(json.dumps({"text": t, "lang": lang}, ensure_ascii=False) + "\n")

seen = set()
with open(f"{out}/nltk_cases.jsonl", "w", encoding="utf-8") as f:
    for line in open(responses, encoding="utf-8"):
        t = json.loads(line).get("response")
        if not t or t in seen:
            continue
        seen.add(t)
        case = {
            "text": t,
            "sentences": len(punkt.tokenize(t)),
            "words": len(re.findall(r"\w+", t)),
            "capital_words": sum(1 for w in nltk.word_tokenize(t) if w.isupper()),
        }
        f.write(json.dumps(case, ensure_ascii=False) + "\n")
        if len(seen) >= n:
            break
