"""Language detection: rsr's `detect_language` against PyPI `langdetect` 1.0.9.

Writes TEXTS.jsonl (as prompts: `id`, `messages`) of generated texts in the
languages IFEval asks for and their neighbours: words drawn from each
language's own n-gram profile, one language or two mixed in varied shares,
short and long, with capitalised words, digits, URLs, e-mail addresses and
Vietnamese in decomposed form. `compare` then reads rsr's answers
(`id`, `lang`) and prints the agreement with langdetect seeded with 0.

    python langdetect_agreement.py generate TEXTS.jsonl [N]
    python langdetect_agreement.py compare TEXTS.jsonl RSR.jsonl
"""

import json
import os
import random
import sys
import unicodedata

import langdetect
from langdetect import DetectorFactory, detect
from langdetect.lang_detect_exception import LangDetectException

DetectorFactory.seed = 0
IFEVAL = ["en", "es", "pt", "ar", "hi", "fr", "ru", "de", "ja", "it", "bn", "uk", "th", "ur",
          "ta", "te", "bg", "ko", "pl", "he", "fa", "vi", "ne", "sw", "kn", "mr", "gu", "pa",
          "ml", "fi"]
NEIGHBOURS = ["ca", "ro", "nl", "af", "da", "no", "sv", "hr", "sl", "sq", "tr", "hu", "el",
              "cy", "cs", "sk", "et", "lt", "lv", "id", "tl", "so", "mk", "zh-cn", "zh-tw"]


def profile(lang):
    path = os.path.join(os.path.dirname(langdetect.__file__), "profiles", lang)
    with open(path, encoding="utf-8") as f:
        p = json.load(f)
    grams = [(g, c) for g, c in p["freq"].items() if len(g) == 3 and g.strip() == g and " " not in g]
    grams.sort(key=lambda x: -x[1])
    return [g for g, _ in grams[:400]]


def word(rng, grams):
    return "".join(rng.choice(grams) for _ in range(rng.choice([1, 1, 2, 2, 3])))


def text(rng, profiles):
    langs = rng.sample(list(profiles), 2)
    share = rng.choice([1.0, 1.0, 0.9, 0.7, 0.5])
    n = rng.choice([1, 2, 3, 5, 8, 15, 40, 120])
    words = []
    for _ in range(n):
        grams = profiles[langs[0] if rng.random() < share else langs[1]]
        w = word(rng, grams)
        r = rng.random()
        if r < 0.05:
            w = w.upper()
        elif r < 0.15:
            w = w.capitalize()
        words.append(w)
    t = " ".join(words)
    r = rng.random()
    if r < 0.05:
        t += " https://example.com/page?q=1 "
    elif r < 0.08:
        t = "contact someone@example.org " + t
    elif r < 0.12:
        t += f" {rng.randint(1, 99999)}."
    if "vi" in langs and rng.random() < 0.5:
        t = unicodedata.normalize("NFD", t)
    return t


if sys.argv[1] == "generate":
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    rng = random.Random(7)
    profiles = {lang: profile(lang) for lang in IFEVAL + NEIGHBOURS}
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"t{i}", "messages": [{"role": "user", "content": text(rng, profiles)}]},
                               ensure_ascii=False) + "\n")
else:
    texts = {}
    for line in open(sys.argv[2], encoding="utf-8"):
        r = json.loads(line)
        texts[r["id"]] = r["messages"][0]["content"]
    rsr = {}
    for line in open(sys.argv[3], encoding="utf-8"):
        r = json.loads(line)
        rsr[r["id"]] = r.get("lang")
    agree, disagree = 0, []
    for i, t in texts.items():
        try:
            ref = detect(t)
        except LangDetectException:
            ref = None
        if ref == rsr.get(i):
            agree += 1
        else:
            disagree.append((i, ref, rsr.get(i), t[:120]))
    print(f"language detection: {agree}/{len(texts)} texts agree ({100 * agree / len(texts):.2f}%)")
    for d in disagree:
        print("DISAGREE", d)
