"""Issue 16's export benchmark: 10,000 recordings as CSV at 50 ms upstream latency.

The sandbox (one process per provider, ``ten_thousand.serving``: 50 ms per answer) and the
gateway (``serve``) each run in their own processes; this process is the client (httpx,
streaming). Figures, per run:

- **seconds** for the whole export, against two floors, both for the fewest sequential
  upstream round trips any walk needs (each provider's pages follow one another, by token;
  providers run side by side): the *nominal* floor, ``max over providers of ceil(rows / page
  size)`` x the latency (as if the sandbox answered in no time), and the *measured* floor: the
  same walks made here, each provider's pages one after another with the gateway's own
  adapters and no merging, all three providers at once (the round trips as they really take,
  the sandbox's time to build each page included); goal: at most 1.2x the floor;
- **first byte**: from the request to the first body byte; goal: under 300 ms;
- **RSS growth** of the gateway: its peak during the export (sampled every 5 ms) less its RSS
  before, after a small warm-up export; goal: under 20 MB;
- the gateway's CPU time over the export, per 1,000 rows (less noisy than wall time on a
  shared machine), and the load average.

And the walk alone (``walk_alone``), in this process, over three stand-in providers that answer
each page after exactly 50 ms and spend no CPU (10,000 recordings, Bird's pages of 99): how
close the merged walk comes to the floor for each read-ahead depth, free of the noise of a
shared machine (what ``app.export.stream.AHEAD`` was chosen from).

Asserts the export's correctness (every row, nothing else), never a time. Run it with either:

    python -m pytest tests/perf/test_export_perf.py -s
    python -m tests.perf.test_export_perf [runs]
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psutil
import pytest

from app.listing.cursors import START
from app.listing.merge import Lane, LaneOptions, ListFilter, runs
from app.models import ListQuery, Provider, Recording, RecordingPage, RecordingStatus
from app.providers import RecordingProvider, build_providers
from app.settings import Settings
from app.upstream import build_transport
from app.upstream.client import Upstream
from tests.perf.ten_thousand import LATENCY, PAGE_SIZE, PeakRss, cpu, serving

PAGE_CAP = {"TWILIO": 100, "SIGNALWIRE": 100, "BIRD": 99}


@dataclass
class Figures:
    rows: int
    seconds: float
    floor: float
    measured_floor: float
    first_byte: float
    rss_growth_mb: float
    cpu_per_1000: float
    load: float

    def line(self) -> str:
        return (
            f"{self.rows:>6} rows  {self.seconds:5.2f} s  floor {self.floor:4.2f} s "
            f"(x{self.seconds / self.floor:4.2f})  measured floor {self.measured_floor:4.2f} s "
            f"(x{self.seconds / self.measured_floor:4.2f})  "
            f"first byte {self.first_byte * 1000:4.0f} ms  "
            f"RSS +{self.rss_growth_mb:5.1f} MB  CPU {self.cpu_per_1000 * 1000:4.0f} ms/1k rows  "
            f"load {self.load:.2f}"
        )


def export(url: str, params: dict[str, str] | None = None) -> tuple[bytes, float, float]:
    """The CSV body, seconds to its first byte, seconds to its end."""
    started_at = time.perf_counter()
    first_byte = 0.0
    chunks: list[bytes] = []
    timeout = httpx.Timeout(30.0, read=60.0)
    with httpx.stream("GET", f"{url}/export/recordings.csv", params=params, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_raw():
            if not first_byte:
                first_byte = time.perf_counter() - started_at
            chunks.append(chunk)
    return b"".join(chunks), first_byte, time.perf_counter() - started_at


def exported_rows(body: bytes) -> Counter[str]:
    """Rows per provider of a whole CSV export (asserted complete: every provider, ~10,000)."""
    lines = body.decode().split("\r\n")
    assert lines[0].startswith("provider,id,") and lines[-1] == ""
    per_provider = Counter(line.split(",", 1)[0] for line in lines[1:-1])
    assert sum(per_provider.values()) > 9900 and set(per_provider) == set(PAGE_CAP), per_provider
    return per_provider


def floor(per_provider: Counter[str]) -> float:
    """The nominal floor: the fewest sequential page round trips, in seconds."""
    return max(math.ceil(n / PAGE_CAP[p]) for p, n in per_provider.items()) * LATENCY


async def sequential_walks(env: Mapping[str, str]) -> float:
    """Seconds to read every provider's listing page by page, providers side by side, each
    from where ``env`` (the gateway's provider settings) points it."""
    settings = Settings.from_env(env)
    upstream = Upstream(build_transport(settings), timeout=settings.upstream_timeout)
    adapters = build_providers(settings.tenant_settings()["default"], upstream, settings.upstream)

    async def walk(adapter: RecordingProvider) -> None:
        token: str | None = None
        while True:
            page = await adapter.list_page(ListQuery(), token, PAGE_SIZE)
            if page.next_token is None:
                return
            token = page.next_token

    try:
        started_at = time.perf_counter()
        await asyncio.gather(*(walk(adapter) for adapter in adapters.values()))
        return time.perf_counter() - started_at
    finally:
        await upstream.aclose()


def measure(runs: int = 3) -> list[Figures]:
    results: list[Figures] = []
    with serving() as (sandboxes, gateway):
        process = psutil.Process(gateway.pid)
        export(gateway.url, {"providers": "BIRD", "statuses": "FAILED"})  # warm-up
        for _ in range(runs):
            measured_floor = asyncio.run(sequential_walks(sandboxes.env()))
            rss_before = process.memory_info().rss
            cpu_before = cpu(process)
            with PeakRss(process) as peak:
                body, first_byte, seconds = export(gateway.url)
            spent = cpu(process) - cpu_before
            per_provider = exported_rows(body)
            rows = sum(per_provider.values())
            results.append(
                Figures(
                    rows=rows,
                    seconds=seconds,
                    floor=floor(per_provider),
                    measured_floor=measured_floor,
                    first_byte=first_byte,
                    rss_growth_mb=max(0, peak.peak - rss_before) / 1e6,
                    cpu_per_1000=spent / rows * 1000,
                    load=os.getloadavg()[0],
                )
            )
    return results


class StandIn:
    """A provider's listing that answers every page after ``LATENCY``, newest first."""

    def __init__(self, provider: Provider, count: int, cap: int) -> None:
        self.provider = provider
        self.cap = cap
        clock = random.Random(provider.value)
        newest = datetime(2026, 11, 27, tzinfo=UTC)
        moments = sorted(
            (newest - timedelta(seconds=clock.randrange(90 * 86400)) for _ in range(count)),
            reverse=True,
        )
        self.recordings = [
            Recording(
                provider, f"{index:06d}", RecordingStatus.COMPLETED, "completed", created_at=m
            )
            for index, m in enumerate(moments)
        ]

    async def list_page(self, query: ListQuery, token: str | None, size: int) -> RecordingPage:
        await asyncio.sleep(LATENCY)
        start = int(token or 0)
        end = start + min(size, self.cap)
        next_token = str(end) if end < len(self.recordings) else None
        return RecordingPage(tuple(self.recordings[start:end]), next_token)


async def walk_alone(ahead: int) -> tuple[int, float, float]:
    """Rows, seconds and the floor of the merged walk over the stand-ins."""
    counts = {"TWILIO": 3334, "SIGNALWIRE": 3334, "BIRD": 3334}
    stand_ins = [StandIn(Provider[name], n, PAGE_CAP[name]) for name, n in counts.items()]
    options = LaneOptions(ahead=ahead)
    lanes = [Lane(s, START, ListFilter(), PAGE_SIZE, options) for s in stand_ins]  # type: ignore[arg-type]
    floor = max(math.ceil(n / PAGE_CAP[name]) for name, n in counts.items()) * LATENCY
    rows = 0
    started_at = time.perf_counter()
    async for run in runs(lanes):
        rows += sum(1 for _ in run)
    return rows, time.perf_counter() - started_at, floor


def report_walk_alone() -> None:
    for ahead in (0, 1, 2, 4):
        rows, seconds, floor = asyncio.run(walk_alone(ahead))
        print(
            f"walk alone, ahead {ahead}: {rows} rows  {seconds:5.2f} s  floor {floor:4.2f} s "
            f"(x{seconds / floor:4.2f})"
        )


@pytest.mark.perf
def test_export_ten_thousand_recordings() -> None:
    report_walk_alone()
    for figures in measure():
        print(figures.line())


if __name__ == "__main__":
    report_walk_alone()
    for figures in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(figures.line())
