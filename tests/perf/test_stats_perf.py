"""recordingStats over ~10,000 recordings at 50 ms upstream latency: the walk against the fewest
sequential page round trips it can take, and a closed period answered again from the cache.

The sandbox and the gateway each run in their own process (``python -m app sandbox`` and
``serve``), on loopback, so the gateway's own CPU time and RSS are read apart from the sandbox's.
Prints figures; asserts only that the answers are complete. Run it with either of:

    python -m pytest tests/perf/test_stats_perf.py -s
    python -m tests.perf.test_stats_perf [rounds]
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
import pytest

from app.sandbox import DEMO, Sandbox, create_sandbox_app
from app.sandbox.data import READY_STATUS
from app.settings import Settings
from tests.perf.processes import sandbox_and_gateway
from tests.support import gateway_client, sandbox_env

PER_PROVIDER = 3400  # the listed ones (Twilio lists no deleted recording): ~10,000 in all
LATENCY = 0.05
#: Each provider's largest page (what the gateway asks for: app.stats.walk.PAGE_SIZE, clamped).
PAGE_SIZES = {"TWILIO": 1000, "SIGNALWIRE": 1000, "BIRD": 99}
REPEATS = 200  # asks of the cached closed period

QUERY = """
query Stats($filter: RecordingFilter, $groupBy: [StatsDimension!]!, $timeZone: String!) {
  recordingStats(filter: $filter, groupBy: $groupBy, timeZone: $timeZone) {
    key { provider day status }
    count totalDurationSeconds averageDurationSeconds unknownDurationCount
    cost { amount currency } unknownCostCount
  }
}
"""


def ask(
    client: httpx.Client, group_by: list[str], flt: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], float]:
    variables = {"filter": flt, "groupBy": group_by, "timeZone": "UTC"}
    started = time.perf_counter()
    response = client.post("/graphql", json={"query": QUERY, "variables": variables})
    seconds = time.perf_counter() - started
    body = response.json()
    assert "errors" not in body, body["errors"]
    rows: list[dict[str, Any]] = body["data"]["recordingStats"]
    return rows, seconds


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def child(command: str) -> psutil.Process:
    """The child process running ``python -m app COMMAND``."""
    children = psutil.Process(os.getpid()).children(recursive=True)
    found = [p for p in children if command in p.cmdline()]
    assert len(found) == 1, found
    return found[0]


def measure(rounds: int, latency: float = LATENCY) -> dict[str, Any]:
    with (
        sandbox_and_gateway(latency=latency, recordings=PER_PROVIDER) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        gateway, provider = child("serve"), child("sandbox")
        ask(client, [])  # warm up: connections, imports, the first compile of everything
        rss_before = gateway.memory_info().rss
        walks, cpus, sandbox_cpus = [], [], []
        rows: list[dict[str, Any]] = []
        for _ in range(rounds):
            spent, sandbox_spent = cpu(gateway), cpu(provider)
            rows, seconds = ask(client, ["PROVIDER", "DAY", "STATUS"])
            cpus.append(cpu(gateway) - spent)
            sandbox_cpus.append(cpu(provider) - sandbox_spent)
            walks.append(seconds)
        rss_growth = gateway.memory_info().rss - rss_before
        per_provider = {p: 0 for p in PAGE_SIZES}
        for row in rows:
            per_provider[row["key"]["provider"]] += row["count"]
        total = sum(per_provider.values())
        pages = {p: math.ceil(n / PAGE_SIZES[p]) for p, n in per_provider.items()}
        round_trips = max(pages.values())
    return {
        "total": total,
        "per_provider": per_provider,
        "pages": pages,
        "round_trips": round_trips,
        "ideal": round_trips * LATENCY,
        "latency": latency,
        "walks": walks,
        "walk_cpu": cpus,
        "sandbox_cpu": sandbox_cpus,
        "rss_growth_mb": rss_growth / 2**20,
    }


ACTIVE = {
    "twilio": {"in-progress", "paused", "stopped", "processing"},
    "signalwire": {"queued", "in-progress", "paused", "resumed", "stopped"},
    "bird": {"accepted", "ongoing", "paused", "completed"},
}


async def measure_closed() -> dict[str, Any]:
    """An archive: the same data set with every recording terminal, in one process (the
    sandbox's data can only be changed in-process), asked about a period long over."""
    config = replace(DEMO, latency=LATENCY, recordings_per_provider=PER_PROVIDER)
    app = create_sandbox_app(config)
    sandbox: Sandbox = app.state.sandbox
    for record in list(sandbox.dataset):
        if record.status in ACTIVE[record.provider]:
            sandbox.dataset.put(replace(record, status=READY_STATUS[record.provider]))
    settings = Settings.from_env(sandbox_env(config))
    before = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    variables = {"filter": {"createdBefore": before}, "groupBy": ["PROVIDER", "DAY"]}
    payload = {"query": QUERY, "variables": {**variables, "timeZone": "UTC"}}
    async with gateway_client(settings, httpx.ASGITransport(app=app)) as client:
        started = time.perf_counter()
        first = (await client.post("/graphql", json=payload)).json()
        first_seconds = time.perf_counter() - started
        assert "errors" not in first, first
        upstream = len(sandbox.requests)
        walls, cpus = [], []
        for _ in range(REPEATS):
            started, spent = time.perf_counter(), time.process_time()
            again = (await client.post("/graphql", json=payload)).json()
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - spent)
            assert again == first
        assert len(sandbox.requests) == upstream  # not one more upstream request
    rows = first["data"]["recordingStats"]
    return {
        "closed_count": sum(r["count"] for r in rows),
        "closed_rows": len(rows),
        "first_closed": first_seconds,
        "upstream": upstream,
        "repeated": walls,
        "repeat_cpu": cpus,
    }


def report(result: dict[str, Any]) -> str:
    walks = sorted(result["walks"])
    median = statistics.median(walks)
    repeated = sorted(result["repeated"])
    p95 = repeated[int(len(repeated) * 0.95) - 1]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return "\n".join(
        [
            f"recordingStats over {result['total']} recordings {result['per_provider']}, "
            f"{LATENCY * 1000:.0f} ms per upstream request; load average {load}",
            f"  pages per provider {result['pages']}: at least {result['round_trips']} "
            f"sequential round trips = {result['ideal']:.2f} s",
            f"  walk (groupBy PROVIDER, DAY, STATUS), {len(walks)} runs: median {median:.2f} s "
            f"(min {walks[0]:.2f}, max {walks[-1]:.2f}) = {median / result['ideal']:.2f}x the "
            f"round trips; gateway CPU {statistics.median(result['walk_cpu']) * 1000:.0f} ms "
            f"per walk (sandbox {statistics.median(result['sandbox_cpu']) * 1000:.0f} ms); "
            f"RSS growth {result['rss_growth_mb']:.1f} MB",
            f"  the same walk at 0 ms upstream: median {result['unloaded']:.2f} s",
            f"  closed period ({result['closed_count']} recordings, {result['closed_rows']} rows, "
            f"in one process): first ask {result['first_closed']:.2f} s "
            f"({result['upstream']} upstream requests); asked again {len(repeated)} times, no "
            f"upstream request: median {statistics.median(repeated) * 1000:.1f} ms, p95 "
            f"{p95 * 1000:.1f} ms, CPU {statistics.median(result['repeat_cpu']) * 1000:.1f} ms "
            "per answer (gateway and client)",
        ]
    )


def run(rounds: int) -> dict[str, Any]:
    unloaded = measure(rounds, 0.0)
    return {
        **measure(rounds),
        "unloaded": statistics.median(unloaded["walks"]),
        **asyncio.run(measure_closed()),
    }


@pytest.mark.perf
def test_stats_over_ten_thousand_recordings() -> None:
    print("\n" + report(run(3)))


if __name__ == "__main__":
    print(report(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
