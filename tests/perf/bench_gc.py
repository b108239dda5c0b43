"""Garbage collector settings of ``serve``, compared under load (issue 14).

Run from the repository root (it prints figures; it asserts nothing)::

    python -m tests.perf.bench_gc [--rounds 5] [--setups python,freeze,tuned] [--batch]

The sandbox runs in its own process; for each setup, a gateway process runs
``recording-gateway serve`` with ``app.cli.tune_gc`` replaced by that setup (the one thing
compared), timing every collection with ``gc.callbacks``. The load: 32 clients, 150
cached ``recording`` queries each after 300 to warm up (``--batch``: 4 clients, 50
100-ref ``recordingsByRef`` queries of every field each). Setups take turns, in reverse
order every other round; each row is one gateway's run, then the medians per setup. CPU
per request is the gateway process's (user + system) over every request it served.

Setups: ``python`` (CPython's defaults, nothing frozen), ``freeze`` (``gc.freeze()`` after
start-up, Python's thresholds: what ``serve`` does), ``tuned`` (frozen, thresholds
``(2000, 10, 10)``: what ``serve`` did before issue 14).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from app.sandbox import DEMO, build_dataset
from tests.perf.processes import free_port, run
from tests.support import RECORDING_FIELDS, sandbox_env

ONE = "query One($p: Provider!, $id: ID!) { recording(provider: $p, id: $id) { id status } }"
BATCH = "query B($refs: [RecordingRefInput!]!) { recordingsByRef(refs: $refs) { %s } }"

#: The gateway: ``serve`` with the setup under test, its collections timed.
GATEWAY = """
import atexit, gc, json, resource, sys, time
import app.cli

setup, stats, port = sys.argv[1:]


def frozen():
    gc.collect()
    gc.freeze()


def tuned():
    frozen()
    gc.set_threshold(2_000, 10, 10)


app.cli.tune_gc = {"python": lambda: None, "freeze": frozen, "tuned": tuned}[setup]
pauses = {0: [], 1: [], 2: []}
began = [0.0]


def timed(phase, info):
    if phase == "start":
        began[0] = time.perf_counter()
    else:
        pauses[info["generation"]].append(time.perf_counter() - began[0])


gc.callbacks.append(timed)


@atexit.register
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(stats, "w") as out:
        json.dump({"pauses": pauses, "cpu": usage.ru_utime + usage.ru_stime,
                   "rss_kb": usage.ru_maxrss, "thresholds": gc.get_threshold()}, out)


sys.exit(app.cli.main(["serve", "--port", port]))
"""


@contextmanager
def gateway(setup: str, env: dict[str, str], stats: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-c", GATEWAY, setup, str(stats), str(port)]
    with subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if "Uvicorn running on" in line:
                break
        else:
            raise RuntimeError("the gateway exited before listening")
        threading.Thread(target=process.stdout.read, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


async def load(
    url: str, query: str, variables: list[dict[str, Any]], clients: int, each: int, warm: int
) -> tuple[list[float], float, int]:
    """Latencies of ``clients`` x ``each`` requests, the wall time, and every request sent."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> float:
            started = time.perf_counter()
            body = {"query": query, "variables": variables[n % len(variables)]}
            async with session.post(f"{url}/graphql", json=body) as response:
                answer = await response.json()
            assert "errors" not in answer, answer
            return time.perf_counter() - started

        for n in range(warm):
            await one(n)

        async def client(c: int) -> None:
            for n in range(each):
                latencies.append(await one(c * each + n))

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        return latencies, time.perf_counter() - started, warm + clients * each


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--setups", default="python,freeze,tuned")
    parser.add_argument("--batch", action="store_true")
    args = parser.parse_args()
    setups: list[str] = args.setups.split(",")
    dataset = build_dataset(replace(DEMO, recordings_per_provider=60))
    refs = [
        {"provider": name.upper(), "id": r.id}
        for name in ("twilio", "signalwire", "bird")
        for r in dataset.listing(name)
        if r.status != "deleted"
    ]
    variables: list[dict[str, Any]]
    if args.batch:
        query, variables = BATCH % RECORDING_FIELDS, [{"refs": refs[:100]}]
        clients, each, warm = 4, 50, 10
    else:
        query = ONE
        variables = [{"p": ref["provider"], "id": ref["id"]} for ref in refs[:30]]
        clients, each, warm = 32, 150, 300
    rows: dict[str, list[dict[str, float]]] = {setup: [] for setup in setups}
    with (
        run(["sandbox", "--recordings", "60"]) as sandbox_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = sandbox_env(DEMO, sandbox_url)
        for round_ in range(args.rounds):
            for setup in setups if round_ % 2 == 0 else setups[::-1]:
                stats = Path(tmp) / f"{setup}-{round_}.json"
                with gateway(setup, env, stats) as url:
                    latencies, wall, sent = asyncio.run(
                        load(url, query, variables, clients, each, warm)
                    )
                figures = json.loads(stats.read_text())
                pauses = figures["pauses"]
                every = [p for generation in pauses.values() for p in generation]
                row = {
                    "rps": len(latencies) / wall,
                    "p50_ms": percentile(latencies, 0.5) * 1e3,
                    "p99_ms": percentile(latencies, 0.99) * 1e3,
                    "gc_ms": sum(every) * 1e3,
                    "full_collections": len(pauses["2"]),
                    "longest_full_ms": max(pauses["2"], default=0) * 1e3,
                    "cpu_ms_per_request": figures["cpu"] * 1e3 / sent,
                    "rss_mb": figures["rss_kb"] / 1024,
                    "load_1min": os.getloadavg()[0],
                }
                rows[setup].append(row)
                shown = ", ".join(f"{k} {v:.2f}" for k, v in row.items())
                print(f"{setup} round {round_} {figures['thresholds']}: {shown}", flush=True)
    for setup, runs in rows.items():
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(f"median {setup}: " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()
