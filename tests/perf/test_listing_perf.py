"""How long walking 1,000 recordings across the three providers takes, and what it costs upstream.

Prints figures; asserts nothing about time. The default test run leaves this folder out.
Run it with either of:

    python -m pytest tests/perf -s
    python -m tests.perf.test_listing_perf
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.listing.support import expected, walk
from tests.support import gateway_client, sandbox_env

TOTAL = 1000
LATENCY = 0.05  # seconds per upstream request, added by the sandbox
PAGE_SIZES = (100, 50, 20)
LATENCIES = (LATENCY, 0.0)  # the second row shows the gateway's (and sandbox's) own time


def trim_to(sandbox: Sandbox, total: int) -> None:
    """Drop the oldest records until exactly ``total`` are listed, spread over the providers."""
    while len(expected(sandbox)) > total:
        provider = max(
            ("twilio", "signalwire", "bird"), key=lambda p: len(sandbox.dataset.listing(p))
        )
        sandbox.dataset.delete(provider, sandbox.dataset.listing(provider)[-1].id)


async def measure(first: int, latency: float = LATENCY) -> dict[str, object]:
    config = SandboxConfig(recordings_per_provider=TOTAL // 3 + 20, latency=latency)
    app = create_sandbox_app(config)
    sandbox: Sandbox = app.state.sandbox
    trim_to(sandbox, TOTAL)
    settings = Settings.from_env(sandbox_env(config))
    async with gateway_client(settings, httpx.ASGITransport(app=app)) as client:
        started = time.perf_counter()
        seen, pages = await walk(client, first)
        seconds = time.perf_counter() - started
    assert seen == expected(sandbox) and len(seen) == TOTAL
    per_provider = Counter(r.provider for r in sandbox.requests)
    return {
        "first": first,
        "latency": latency,
        "pages": len(pages),
        "seconds": seconds,
        "requests": len(sandbox.requests),
        "per_provider": dict(per_provider),
    }


def report(rows: list[dict[str, object]]) -> str:
    lines = [
        f"walk {TOTAL} recordings over 3 providers (sandbox in-process, so its CPU is included)",
        f"{'first':>5} {'latency':>7} {'pages':>5} {'seconds':>7} {'requests':>8}  per provider",
    ]
    for row in rows:
        latency = f"{float(str(row['latency'])) * 1000:.0f} ms"
        lines.append(
            f"{row['first']:>5} {latency:>7} {row['pages']:>5} {row['seconds']:>7.2f} "
            f"{row['requests']:>8}  {row['per_provider']}"
        )
    return "\n".join(lines)


@pytest.mark.perf
@pytest.mark.anyio
async def test_walk_one_thousand_recordings() -> None:
    rows = [await measure(first, latency) for first in PAGE_SIZES for latency in LATENCIES]
    print("\n" + report(rows))


if __name__ == "__main__":
    rows = [asyncio.run(measure(f, latency)) for f in PAGE_SIZES for latency in LATENCIES]
    print(report(rows))
