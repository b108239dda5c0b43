"""recordingStats over ~10,000 recordings at 50 ms upstream latency: the walk against the fewest
sequential page round trips it can take, and a closed period answered again from the cache.

The sandbox (one process per provider, ``ten_thousand.serving``) and the gateway (``serve``)
run in their own processes, on loopback, so the gateway's own CPU time and RSS are read apart
from the sandboxes'.
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
from tests.perf.ten_thousand import LATENCY, PER_PROVIDER, cpu, serving
from tests.support import gateway_client, sandbox_env

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


def measure(rounds: int, latency: float = LATENCY) -> dict[str, Any]:
    with (
        serving(latency) as (sandboxes, server),
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        gateway = psutil.Process(server.pid)
        ask(client, [])  # warm up: connections, imports, the first compile of everything
        rss_before = gateway.memory_info().rss
        walks, cpus, sandbox_cpus, daily = [], [], [], []
        rows: list[dict[str, Any]] = []
        day_rows: list[dict[str, Any]] = []
        for _ in range(rounds):
            spent, sandbox_spent = cpu(gateway), sandboxes.cpu()
            rows, seconds = ask(client, ["PROVIDER"])
            cpus.append(cpu(gateway) - spent)
            sandbox_cpus.append(sandboxes.cpu() - sandbox_spent)
            walks.append(seconds)
            day_rows, seconds = ask(client, ["PROVIDER", "DAY"])
            daily.append(seconds)
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
        "daily": daily,
        "day_rows": len(day_rows),
        "sandbox_cpu": sandbox_cpus,
        "rss_growth_mb": rss_growth / 2**20,
    }


ACTIVE = {
    "twilio": {"in-progress", "paused", "stopped", "processing"},
    "signalwire": {"queued", "in-progress", "paused", "resumed", "stopped"},
    "bird": {"accepted", "ongoing", "paused", "completed"},
}


#: The same stats selected otherwise: a document the response cache has not seen, so only the
#: stats' own cache can answer it.
OTHER = QUERY.replace("query Stats(", "query Other(").replace("key {", "k: key {")


async def measure_closed() -> dict[str, Any]:
    """An archive: the same data set with every recording terminal, in one process (the
    sandbox's data can only be changed in-process), asked about periods long over: its last
    90 days, per provider and day (a dashboard), and all of it."""
    config = replace(DEMO, latency=LATENCY, recordings_per_provider=PER_PROVIDER)
    app = create_sandbox_app(config)
    sandbox: Sandbox = app.state.sandbox
    for record in list(sandbox.dataset):
        if record.status in ACTIVE[record.provider]:
            sandbox.dataset.put(replace(record, status=READY_STATUS[record.provider]))
    newest = max(record.created for record in sandbox.dataset)
    before = datetime.now(UTC) - timedelta(minutes=1)
    periods = {
        "last 90 days": {"createdAfter": (newest - timedelta(days=90)).isoformat()},
        "everything": {},
    }
    settings = Settings.from_env(sandbox_env(config))
    results: dict[str, Any] = {}
    async with gateway_client(settings, httpx.ASGITransport(app=app)) as client:
        for name, bounds in periods.items():
            flt = {**bounds, "createdBefore": before.isoformat()}
            variables = {"filter": flt, "groupBy": ["PROVIDER", "DAY"], "timeZone": "UTC"}
            sandbox.requests.clear()
            started = time.perf_counter()
            first = await client.post("/graphql", json={"query": QUERY, "variables": variables})
            first_seconds = time.perf_counter() - started
            body = first.json()
            assert "errors" not in body, body
            upstream = len(sandbox.requests)
            timings = {}
            for label, document in (("same query", QUERY), ("another selection", OTHER)):
                walls, cpus = [], []
                for index in range(REPEATS):
                    # Another selection, made a new document each time by a comment: the
                    # response cache never holds it, the stats' own cache answers.
                    text = document if label == "same query" else f"{document} # {index}"
                    started, spent = time.perf_counter(), time.process_time()
                    again = await client.post(
                        "/graphql", json={"query": text, "variables": variables}
                    )
                    walls.append(time.perf_counter() - started)
                    cpus.append(time.process_time() - spent)
                    assert "errors" not in again.json()
                timings[label] = (sorted(walls), statistics.median(cpus))
            assert len(sandbox.requests) == upstream  # not one more upstream request
            rows = body["data"]["recordingStats"]
            results[name] = {
                "count": sum(r["count"] for r in rows),
                "rows": len(rows),
                "first": first_seconds,
                "upstream": upstream,
                "timings": timings,
            }
    return {"closed": results}


def closed_lines(closed: dict[str, Any]) -> list[str]:
    lines = []
    for name, period in closed.items():
        lines.append(
            f"  closed period, {name} ({period['count']} recordings, {period['rows']} rows of "
            f"PROVIDER, DAY; in one process): first ask {period['first']:.2f} s "
            f"({period['upstream']} upstream requests); then {REPEATS} asks each, no upstream "
            "request:"
        )
        for label, (walls, cpu_median) in period["timings"].items():
            p95 = walls[int(len(walls) * 0.95) - 1]
            lines.append(
                f"    {label:>17}: median {statistics.median(walls) * 1000:.1f} ms, p95 "
                f"{p95 * 1000:.1f} ms, CPU {cpu_median * 1000:.1f} ms (gateway and client)"
            )
    return lines


def report(result: dict[str, Any]) -> str:
    walks = sorted(result["walks"])
    median = statistics.median(walks)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return "\n".join(
        [
            f"recordingStats over {result['total']} recordings {result['per_provider']}, "
            f"{LATENCY * 1000:.0f} ms per upstream request; load average {load}",
            f"  pages per provider {result['pages']}: at least {result['round_trips']} "
            f"sequential round trips = {result['ideal']:.2f} s",
            f"  walk (groupBy PROVIDER), {len(walks)} runs: median {median:.2f} s "
            f"(min {walks[0]:.2f}, max {walks[-1]:.2f}) = {median / result['ideal']:.2f}x the "
            f"round trips; gateway CPU {statistics.median(result['walk_cpu']) * 1000:.0f} ms "
            f"per walk (sandbox {statistics.median(result['sandbox_cpu']) * 1000:.0f} ms); "
            f"RSS growth {result['rss_growth_mb']:.1f} MB",
            f"  the same walk at 0 ms upstream: median {result['unloaded']:.2f} s",
            f"  groupBy PROVIDER, DAY ({result['day_rows']} rows): median "
            f"{statistics.median(result['daily']):.2f} s",
            *closed_lines(result["closed"]),
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
