"""The script a user would otherwise write, measured beside `rsr sample`.

An asyncio loop on the official `openai` client (AsyncOpenAI, its own
retries), at most C requests in flight, each response appended to a JSON
Lines file as it arrives, and on a rerun the prompts already in the file
skipped: the usual "resumable" sampling script. It does less than rsr (no
verifier, no Parquet, no steps or early stop), so its CPU is a floor for
that kind of client.

    python3 benches/peer_asyncio.py BASE_URL[,BASE_URL…] PROMPTS.jsonl OUT.jsonl C N

Several base URLs: the prompts go round-robin, one client per server.

Needs `pip install openai`. Prints the requests it sent and the wall time.
"""

import asyncio
import json
import os
import sys
import time

from openai import AsyncOpenAI


async def main(base_urls, prompts_path, out_path, concurrency, n):
    clients = [
        AsyncOpenAI(base_url=u, api_key="unused", max_retries=5, timeout=600)
        for u in base_urls.split(",")
    ]
    done = set()
    if os.path.exists(out_path):
        with open(out_path) as f:
            for line in f:
                try:
                    done.add(json.loads(line)["id"])
                except (ValueError, KeyError):
                    pass  # a line cut by a kill
    with open(prompts_path) as f:
        prompts = [json.loads(line) for line in f]
    todo = [p for p in prompts if p["id"] not in done]
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    with open(out_path, "a") as out:

        async def one(i, p):
            client = clients[i % len(clients)]
            async with gate:
                r = await client.chat.completions.create(
                    model="mock", messages=p["messages"], n=n, max_tokens=4096
                )
            responses = [c.message.content for c in r.choices]
            out.write(json.dumps({"id": p["id"], "responses": responses}) + "\n")

        await asyncio.gather(*(one(i, p) for i, p in enumerate(todo)))
    print(f"sent {len(todo)} requests in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    url, prompts, out, c, n = sys.argv[1:6]
    asyncio.run(main(url, prompts, out, int(c), int(n)))
