"""Issue 14: CPU per cached ``recording`` request, response cache on against off.

Run on demand (the default test run leaves tests/perf out):

    python -m pytest tests/perf/test_response_cache_perf.py -s

Three processes on loopback: the sandbox, and two gateways over it (``memory://`` cache),
one with ``GATEWAY_RESPONSE_CACHE=on`` and one with ``off``. Both are warmed (every target
recording cached, and with the response cache on every answer kept); then rounds alternate
on, off, on, off ...: each round sends the same cached ``recording`` queries from 16
concurrent clients, and the figure is the gateway process's CPU time (user + system, from
psutil) divided by the requests of the round. The load average is printed with it: the
machine is shared. It asserts only correctness (every answer of the "on" gateway a HIT).
"""

from __future__ import annotations

import asyncio
import os
import statistics
from typing import Any

import httpx
import psutil

from app.sandbox import DEMO, build_dataset
from app.upstream.aiohttp_transport import AiohttpTransport
from tests.perf.processes import run, started
from tests.perf.test_fanout_and_cache import ONE
from tests.support import sandbox_env

ROUNDS = 5  # per gateway
CLIENTS = 16
PER_CLIENT = 100


async def round_of(url: str, targets: list[dict[str, str]], expect: str | None) -> int:
    """Send ``CLIENTS x PER_CLIENT`` cached queries; the number sent."""
    async with httpx.AsyncClient(base_url=url, timeout=60, transport=AiohttpTransport()) as client:

        async def worker(offset: int) -> None:
            for n in range(PER_CLIENT):
                ref = targets[(offset + n) % len(targets)]
                variables: dict[str, Any] = {"p": ref["provider"], "id": ref["id"]}
                response = await client.post(
                    "/graphql", json={"query": ONE, "variables": variables}
                )
                assert response.status_code == 200 and "errors" not in response.json()
                assert response.headers.get("x-cache") == expect, response.headers

        await asyncio.gather(*(worker(i) for i in range(CLIENTS)))
    return CLIENTS * PER_CLIENT


def ready_refs(count: int, recordings: int = 60) -> list[dict[str, str]]:
    """Recordings in a final state (an active one is kept only seconds): ``count`` of them,
    across the three providers."""
    from dataclasses import replace

    dataset = build_dataset(replace(DEMO, recordings_per_provider=recordings))
    picked = [
        {"provider": name.upper(), "id": r.id}
        for name in ("twilio", "signalwire", "bird")
        for r in dataset.listing(name)
        if r.ready
    ]
    return picked[::3][:count] if len(picked) >= 3 * count else picked[:count]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def test_cpu_per_cached_request_with_the_response_cache_on_and_off() -> None:
    targets = ready_refs(30)
    with run(["sandbox", "--recordings", "60"]) as sandbox_url:
        env = {**sandbox_env(DEMO, sandbox_url), "GATEWAY_CACHE_URL": "memory://"}
        with (
            started(["serve"], {**env, "GATEWAY_RESPONSE_CACHE": "on"}) as on,
            started(["serve"], {**env, "GATEWAY_RESPONSE_CACHE": "off"}) as off,
        ):
            gateways: dict[str, tuple[str, psutil.Process, str | None]] = {
                "on": (on.url, psutil.Process(on.pid), "HIT"),
                "off": (off.url, psutil.Process(off.pid), None),
            }
            for url, _, _ in gateways.values():  # warm: recordings (and answers) cached
                for seen in ("MISS", "HIT"):
                    asyncio.run(warm(url, targets, seen if url == on.url else None))
            figures: dict[str, list[float]] = {"on": [], "off": []}
            loads: list[float] = []
            for _ in range(ROUNDS):
                for name, (url, process, expect) in gateways.items():
                    before = cpu_seconds(process)
                    sent = asyncio.run(round_of(url, targets, expect))
                    figures[name].append((cpu_seconds(process) - before) / sent * 1e6)
                    loads.append(os.getloadavg()[0])
    on_us, off_us = statistics.median(figures["on"]), statistics.median(figures["off"])
    print(
        f"\nCPU per cached `recording` request ({CLIENTS} clients x {PER_CLIENT}, "
        f"{ROUNDS} interleaved rounds each, medians):"
        f"\n  response cache on  {on_us:6.0f} us  (rounds: {fmt(figures['on'])})"
        f"\n  response cache off {off_us:6.0f} us  (rounds: {fmt(figures['off'])})"
        f"\n  ratio on/off {on_us / off_us:.2f}; 1-minute load average during the rounds "
        f"{min(loads):.2f}-{max(loads):.2f} (2 cores)"
    )


async def warm(url: str, targets: list[dict[str, str]], expect: str | None) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for ref in targets:
            variables = {"p": ref["provider"], "id": ref["id"]}
            response = await client.post("/graphql", json={"query": ONE, "variables": variables})
            assert response.headers.get("x-cache") == expect, (url, response.headers)


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)
