"""The Python side of the bindings comparison (scripts/bench-bindings)."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import nexus

env = json.loads(os.environ["NEXUS_BENCH_ENV"])
client = nexus.Client(home=os.environ["NEXUS_BENCH_HOME"], env=env, vault=None)
calls = int(os.environ.get("NEXUS_BENCH_CALLS", "200000"))
prompt = "fix the failing test in the parser module"

classify = client.classify
for _ in range(1000):
    classify(prompt)
t = time.perf_counter()
for _ in range(calls):
    classify(prompt)
ns = (time.perf_counter() - t) / calls * 1e9
print(json.dumps({"lang": "python", "what": "classify", "ns_per_call": round(ns, 1)}))

t = time.perf_counter()
for _ in range(calls // 10):
    client.route(prompt, "coding")
ns = (time.perf_counter() - t) / (calls // 10) * 1e9
print(json.dumps({"lang": "python", "what": "route", "ns_per_call": round(ns, 1)}))

# An empty loop, to say how much of the above is Python's own loop.
t = time.perf_counter()
for _ in range(calls):
    pass
ns = (time.perf_counter() - t) / calls * 1e9
print(json.dumps({"lang": "python", "what": "empty_loop", "ns_per_call": round(ns, 1)}))

streams = int(os.environ.get("NEXUS_BENCH_STREAMS", "5"))
text = "word " * (int(os.environ.get("NEXUS_BENCH_TEXT_CHARS", "200000")) // 5)
addr = env["ANTHROPIC_BASE_URL"].rstrip("/")


def burst() -> None:
    body = json.dumps({"api": "openai", "scripts": [{"burst": text}]}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{addr}/_standin/script", data=body)).read()


for i in range(streams):
    burst()
    t = time.perf_counter()
    events = 0
    size = 0
    for ev in client.stream("openai/gpt-4o-mini", "go"):
        if ev.type == "text":
            size += len(ev.text or "")
        events += 1
    secs = time.perf_counter() - t
    print(json.dumps({"lang": "python", "what": "stream", "run": i, "events": events,
                      "text_bytes": size, "events_per_sec": round(events / secs)}))

import asyncio  # noqa: E402


async def astreams() -> None:
    ac = nexus.AsyncClient(home=os.environ["NEXUS_BENCH_HOME"], env=env)
    for i in range(streams):
        burst()
        t = time.perf_counter()
        events = 0
        async for _ in await ac.stream("openai/gpt-4o-mini", "go"):
            events += 1
        secs = time.perf_counter() - t
        print(json.dumps({"lang": "python-asyncio", "what": "stream", "run": i, "events": events,
                          "events_per_sec": round(events / secs)}))


asyncio.run(astreams())
