"""Issue 3 figures: batched fan-out against per-request latency, and cached throughput.

Run on demand (the default test run leaves tests/perf out):

    python -m pytest tests/perf/test_fanout_and_cache.py -s

Three processes: the sandbox providers (50 ms added to every answer), the gateway, and
this load generator, all on loopback. It prints figures; it asserts only correctness.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from app.sandbox import DEMO, build_dataset
from app.upstream.aiohttp_transport import AiohttpTransport
from tests.perf.processes import sandbox_and_gateway

LATENCY = 0.05
ONE = "query One($p: Provider!, $id: ID!) { recording(provider: $p, id: $id) { id status } }"
BATCH = "query B($refs: [RecordingRefInput!]!) { recordingsByRef(refs: $refs) { id } }"


def refs(count: int, recordings: int = 60) -> list[dict[str, str]]:
    from dataclasses import replace

    dataset = build_dataset(replace(DEMO, recordings_per_provider=recordings))
    per_provider = {
        name: [r.id for r in dataset.listing(name) if r.status != "deleted"]
        for name in ("twilio", "signalwire", "bird")
    }
    picked: list[dict[str, str]] = []
    while len(picked) < count:
        for name, ids in per_provider.items():
            if len(picked) < count and ids:
                picked.append({"provider": name.upper(), "id": ids.pop()})
    return picked


async def timed_post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    elapsed = time.perf_counter() - started
    body = response.json()
    assert "errors" not in body, body
    return elapsed


def test_batch_of_100_against_single_request_latency() -> None:
    async def measure(url: str) -> tuple[float, float]:
        async with httpx.AsyncClient(
            base_url=url, timeout=60, transport=AiohttpTransport()
        ) as client:
            all_refs = refs(100)
            # Warm up: the gateway opens its upstream connections (a busy gateway has them).
            await timed_post(client, BATCH, {"refs": all_refs})
            singles = [
                await timed_post(client, ONE, {"p": ref["provider"], "id": ref["id"]})
                for ref in all_refs[:21]
            ]
            batches = [await timed_post(client, BATCH, {"refs": all_refs}) for _ in range(11)]
        return statistics.median(singles), statistics.median(batches)

    with sandbox_and_gateway(latency=LATENCY, GATEWAY_CACHE_URL="none://") as url:
        single, batch = asyncio.run(measure(url))
    print(
        f"\nfan-out: single recording {single * 1000:.1f} ms (median of 21), "
        f"recordingsByRef x100 across 3 providers {batch * 1000:.1f} ms (median of 11), "
        f"ratio {batch / single:.2f}x (issue 14's goal: <= 1.5x; sequential would be ~100x)"
    )


def test_cached_throughput_at_32_clients() -> None:
    clients, per_client = 32, 60
    targets = refs(30)

    async def load(url: str) -> tuple[float, list[float]]:
        async with httpx.AsyncClient(
            base_url=url, timeout=60, transport=AiohttpTransport()
        ) as client:
            for ref in targets:  # warm the cache (and the connections)
                await timed_post(client, ONE, {"p": ref["provider"], "id": ref["id"]})

            async def worker(offset: int) -> list[float]:
                out = []
                for n in range(per_client):
                    ref = targets[(offset + n) % len(targets)]
                    out.append(
                        await timed_post(client, ONE, {"p": ref["provider"], "id": ref["id"]})
                    )
                return out

            started = time.perf_counter()
            results = await asyncio.gather(*(worker(i) for i in range(clients)))
            wall = time.perf_counter() - started
        return wall, [t for r in results for t in r]

    for cache_url in ("memory://", "none://"):
        with sandbox_and_gateway(latency=LATENCY, GATEWAY_CACHE_URL=cache_url) as url:
            wall, latencies = asyncio.run(load(url))
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        rate = len(latencies) / wall
        print(
            f"\n{cache_url:10} {clients} clients x {per_client}: {rate:7.0f} req/s, "
            f"p50 {p50:6.1f} ms, p99 {p99:6.1f} ms"
        )
