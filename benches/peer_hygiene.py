"""What a user would run instead of rsr's hygiene checks, for
benches/hygiene.sh: open-r1's 8-gram decontamination (its normalisation:
lowercase, whitespace words) and datasketch's MinHashLSH dedup (128
permutations, Jaccard 0.8, word 3-gram shingles, first of a group kept).

    python3 benches/peer_hygiene.py decontaminate PROMPTS.jsonl BENCH.jsonl [N]
    python3 benches/peer_hygiene.py dedup PROMPTS.jsonl [THRESHOLD]

Prints one JSON line with the counts.
"""

import json
import sys


def words(text):
    return text.lower().split()


def ngrams(ws, n):
    return {" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1)}


def decontaminate(prompts, bench, n=8):
    index = set()
    for line in open(bench):
        index |= ngrams(words(json.loads(line)["problem"]), n)
    flagged = total = 0
    for line in open(prompts):
        total += 1
        if ngrams(words(json.loads(line)["prompt"]), n) & index:
            flagged += 1
    print(json.dumps({"prompts": total, "contaminated": flagged}))


def dedup(prompts, threshold=0.8):
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    dups = total = 0
    for line in open(prompts):
        row = json.loads(line)
        ws = words(row["prompt"])
        shingles = [" ".join(ws[i : i + 3]).encode() for i in range(max(1, len(ws) - 2))]
        m = MinHash(num_perm=128)
        m.update_batch(shingles)
        total += 1
        if lsh.query(m):
            dups += 1
        else:
            lsh.insert(row["id"], m)
    print(json.dumps({"prompts": total, "duplicates": dups}))


if __name__ == "__main__":
    if sys.argv[1] == "decontaminate":
        decontaminate(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 8)
    else:
        dedup(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.8)
