"""Issue 13's soak: 50 clients for 3 minutes while 10% of upstream requests fail at random.

Run on demand (the default test run leaves tests/perf out), with either of:

    python -m tests.perf.test_soak [--seconds 180 | --smoke]
    python -m pytest tests/perf/test_soak.py -s      (SOAK_SECONDS=20 for a smoke run)

Three processes on loopback: the sandbox (`recording-gateway sandbox --failure-rate 0.1
--latency 0.02`: one provider request in ten answers 503, 502 or 504 at random, seeded; see
`app/sandbox/chaos.py`), the gateway (`recording-gateway serve`, cache off, so that every ref
is a provider call) and this process, 50 clients sending `recordingsByRef` of 10 distinct
refs over the three providers back to back, each client cycling through refs of its own.
It records the share of refs answered, the error codes, p50/p99, upstream calls and retries,
and the gateway's RSS every 10 s. It asserts only correctness: no INTERNAL_SERVER_ERROR,
every error typed, no ref answered with another id.

Retries come from the gateway's ``/metrics`` (``gateway_upstream_requests_total``,
``gateway_upstream_retries_total``) when it answers 200; otherwise they are derived from
the sandbox's count of the requests it received (``GET /_sandbox/chaos``): requests beyond
one per ref sent are retries (aiohttp's own included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.sandbox import DEMO, build_dataset
from app.upstream.aiohttp_transport import AiohttpTransport
from tests.perf.processes import started
from tests.support import sandbox_env

CLIENTS = 50
REFS_PER_QUERY = 10
FAILURE_RATE = 0.10
LATENCY = 0.02  # seconds the sandbox adds to every answer
RECORDINGS = 1000  # per provider: ~2,960 distinct refs, ~59 per client
DEFAULT_SECONDS = 180.0
SMOKE_SECONDS = 20.0
RSS_EVERY = 10.0
FIRST_MINUTE = 60.0
CLIENT_TIMEOUT = 60.0
GOAL_ANSWERED = 0.995
GOAL_RSS_FLAT = 0.05

#: Counters of the gateway's /metrics the report shows (when it has them).
REPORTED_METRICS = (
    "gateway_upstream_requests_total",
    "gateway_upstream_retries_total",
    "gateway_upstream_retry_budget_exhausted_total",
    "gateway_breaker_rejected_calls_total",
)

QUERY = (
    "query Soak($refs: [RecordingRefInput!]!) "
    "{ recordingsByRef(refs: $refs) { id provider status } }"
)


def ref_pool() -> list[dict[str, str]]:
    """Every recording the sandbox serves (not deleted), the providers interleaved."""
    dataset = build_dataset(replace(DEMO, recordings_per_provider=RECORDINGS))
    per_provider = [
        [
            {"provider": name.upper(), "id": r.id}
            for r in dataset.listing(name)
            if r.status != "deleted"
        ]
        for name in ("twilio", "signalwire", "bird")
    ]
    pool: list[dict[str, str]] = []
    for index in range(max(len(ids) for ids in per_provider)):
        pool.extend(ids[index] for ids in per_provider if index < len(ids))
    return pool


@dataclass
class Tally:
    """What the clients saw."""

    requests: int = 0
    refs: int = 0
    answered: int = 0
    wrong_id: int = 0
    untyped: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def record(self, refs: list[dict[str, str]], body: dict[str, Any]) -> None:
        failed: set[int] = set()
        for error in body.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if not isinstance(code, str):
                self.untyped += 1
                code = "(untyped)"
            self.codes[code] += 1
            path = error.get("path") or []
            if len(path) >= 2 and path[0] == "recordingsByRef" and isinstance(path[1], int):
                failed.add(path[1])
            else:  # an error for the whole field: no ref answered
                failed.update(range(len(refs)))
        items = (body.get("data") or {}).get("recordingsByRef") or [None] * len(refs)
        for index, (ref, item) in enumerate(zip(refs, items, strict=True)):
            if item is None or index in failed:
                continue
            if item["id"] == ref["id"] and item["provider"] == ref["provider"]:
                self.answered += 1
            else:
                self.wrong_id += 1


@dataclass
class Sample:
    """One reading every `RSS_EVERY` seconds."""

    at: float
    rss: int
    load: float


@dataclass
class Result:
    seconds: float
    tally: Tally
    samples: list[Sample]
    upstream: int
    retries: int
    retries_source: str
    #: Increases of the gateway's resilience counters over the run (empty without /metrics).
    metrics: dict[str, int]
    injected: dict[str, int]
    cpu: dict[str, float]
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]


async def upstream_counts(client: httpx.AsyncClient, gateway: str, sandbox: str) -> dict[str, Any]:
    """Upstream requests and retries so far: from the gateway's /metrics if it answers, and
    always the sandbox's own count."""
    counts: dict[str, Any] = {}
    metrics = await client.get(f"{gateway}/metrics")
    if metrics.status_code == 200:
        totals: Counter[str] = Counter()
        for family in text_string_to_metric_families(metrics.text):
            for sample in family.samples:
                totals[sample.name] += int(sample.value)
        counts["metrics"] = totals
    chaos = (await client.get(f"{sandbox}/_sandbox/chaos")).json()
    counts["sandbox_requests"] = sum(chaos["requests"].values())
    counts["sandbox_failures"] = chaos["failures"]
    return counts


async def soak(
    gateway: str, gateway_pid: int, sandbox: str, sandbox_pid: int, seconds: float
) -> Result:
    pool = ref_pool()
    tally = Tally()
    samples: list[Sample] = []
    processes = {
        "gateway": psutil.Process(gateway_pid),
        "sandbox": psutil.Process(sandbox_pid),
        "clients": psutil.Process(),
    }
    async with httpx.AsyncClient(
        base_url=gateway, timeout=CLIENT_TIMEOUT, transport=AiohttpTransport()
    ) as client:
        before = await upstream_counts(client, gateway, sandbox)
        cpu_before = {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}
        load_start = os.getloadavg()
        start = time.perf_counter()
        deadline = start + seconds

        async def one_client(number: int) -> None:
            # Refs of its own: the gateway fetches a recording once for every request that
            # asks for it at the same time (`app/cache.py`), so clients sharing refs would
            # share failures too, and each ref sent would not be one provider call.
            mine = pool[number::CLIENTS]
            position = 0
            while time.perf_counter() < deadline:
                refs = [mine[(position + k) % len(mine)] for k in range(REFS_PER_QUERY)]
                position += REFS_PER_QUERY
                sent = time.perf_counter()
                tally.requests += 1
                tally.refs += len(refs)
                try:
                    response = await client.post(
                        "/graphql", json={"query": QUERY, "variables": {"refs": refs}}
                    )
                except httpx.HTTPError as exc:
                    tally.codes[f"client: {type(exc).__name__}"] += 1
                    continue
                tally.latencies.append(time.perf_counter() - sent)
                if response.status_code != 200:
                    tally.codes[f"HTTP {response.status_code}"] += 1
                    continue
                tally.record(refs, response.json())

        async def sampler() -> None:
            while True:
                samples.append(
                    Sample(
                        time.perf_counter() - start,
                        processes["gateway"].memory_info().rss,
                        os.getloadavg()[0],
                    )
                )
                await asyncio.sleep(RSS_EVERY)

        sampling = asyncio.create_task(sampler())
        await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
        elapsed = time.perf_counter() - start
        sampling.cancel()
        rss = processes["gateway"].memory_info().rss
        samples.append(Sample(elapsed, rss, os.getloadavg()[0]))
        cpu = {
            name: (sum(p.cpu_times()[:2]) - cpu_before[name]) / elapsed
            for name, p in processes.items()
        }
        after = await upstream_counts(client, gateway, sandbox)

    upstream = after["sandbox_requests"] - before["sandbox_requests"]
    injected = {
        status: count - before["sandbox_failures"].get(status, 0)
        for status, count in after["sandbox_failures"].items()
    }
    metrics: dict[str, int] = {}
    if "metrics" in after:
        metrics = {
            name: after["metrics"][name] - before["metrics"].get(name, 0)
            for name in REPORTED_METRICS
            if name in after["metrics"]
        }
    retries: int
    if "gateway_upstream_retries_total" in metrics:
        retries = metrics["gateway_upstream_retries_total"]
        source = "gateway /metrics (gateway_upstream_retries_total)"
    else:
        retries = upstream - tally.refs
        source = "sandbox count - refs sent (no /metrics)"
    return Result(
        elapsed,
        tally,
        samples,
        upstream,
        retries,
        source,
        metrics,
        injected,
        cpu,
        load_start,
        os.getloadavg(),
    )


def run_soak(seconds: float) -> Result:
    sandbox_args = [
        "sandbox",
        "--latency",
        str(LATENCY),
        "--recordings",
        str(RECORDINGS),
        "--failure-rate",
        str(FAILURE_RATE),
    ]
    with started(sandbox_args) as sandbox:
        env = {**sandbox_env(DEMO, sandbox.url), "GATEWAY_CACHE_URL": "none://"}
        with started(["serve"], env) as gateway:
            return asyncio.run(soak(gateway.url, gateway.pid, sandbox.url, sandbox.pid, seconds))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def rss_flatness(samples: list[Sample], seconds: float) -> tuple[Sample, float]:
    """The first sample after the first minute (a third of a shorter run) and the largest
    deviation from it afterwards, as a share of it."""
    settle = min(FIRST_MINUTE, seconds / 3)
    later = [s for s in samples if s.at >= settle - 1] or samples[-1:]
    reference = later[0]
    deviation = max(abs(s.rss - reference.rss) for s in later) / reference.rss
    return reference, deviation


def report(result: Result) -> str:
    tally = result.tally
    answered = tally.answered / tally.refs if tally.refs else 0.0
    reference, deviation = rss_flatness(result.samples, result.seconds)
    mb = 1024 * 1024
    lines = [
        f"soak: {CLIENTS} clients x recordingsByRef({REFS_PER_QUERY} refs), "
        f"{result.seconds:.0f} s, {FAILURE_RATE:.0%} of upstream requests failing "
        f"(sandbox +{LATENCY * 1000:.0f} ms), cache off",
        f"  {'requests':<28} {tally.requests} ({tally.requests / result.seconds:.0f}/s)",
        f"  {'refs answered':<28} {tally.answered}/{tally.refs} = {answered:.3%} "
        f"(goal >= {GOAL_ANSWERED:.1%}: {'met' if answered >= GOAL_ANSWERED else 'NOT met'})",
        f"  {'errors by code':<28} {dict(tally.codes.most_common()) or 'none'}",
        f"  {'INTERNAL_SERVER_ERROR':<28} {tally.codes['INTERNAL_SERVER_ERROR']}",
        f"  {'untyped errors / wrong ids':<28} {tally.untyped} / {tally.wrong_id}",
        f"  {'latency p50 / p99 / max':<28} "
        f"{statistics.median(tally.latencies) * 1000:.0f} / "
        f"{percentile(tally.latencies, 0.99) * 1000:.0f} / {max(tally.latencies) * 1000:.0f} ms",
        f"  {'upstream requests':<28} {result.upstream} "
        f"({result.upstream / tally.refs:.3f} per ref sent)",
        f"  {'failures injected':<28} {sum(result.injected.values())} "
        f"({sum(result.injected.values()) / max(result.upstream, 1):.1%}) {result.injected}",
        f"  {'retries':<28} {result.retries} = "
        f"{result.retries / max(result.upstream, 1):.1%} of upstream requests "
        f"[{result.retries_source}]",
        *(f"  {name:<28} +{count}" for name, count in result.metrics.items()),
        f"  {'CPU (share of one core)':<28} "
        + ", ".join(f"{name} {share:.0%}" for name, share in result.cpu.items()),
        f"  {'load average (1/5/15 min)':<28} start {result.load_start[0]:.1f}/"
        f"{result.load_start[1]:.1f}/{result.load_start[2]:.1f}, end {result.load_end[0]:.1f}/"
        f"{result.load_end[1]:.1f}/{result.load_end[2]:.1f} on {os.cpu_count()} cores",
        "  gateway RSS:",
    ]
    for sample in result.samples:
        lines.append(f"    {sample.at:6.1f} s  {sample.rss / mb:7.1f} MB  (load {sample.load:.1f})")
    lines.append(
        f"  {'RSS flatness':<28} max deviation {deviation:.1%} from {reference.rss / mb:.1f} MB "
        f"at {reference.at:.0f} s (goal within {GOAL_RSS_FLAT:.0%}: "
        f"{'met' if deviation <= GOAL_RSS_FLAT else 'NOT met'})"
    )
    return "\n".join(lines)


def check(result: Result) -> None:
    """Correctness only: the figures are printed, not asserted."""
    tally = result.tally
    assert tally.refs > 0 and tally.latencies, "no request was answered"
    assert tally.codes["INTERNAL_SERVER_ERROR"] == 0, tally.codes
    assert tally.untyped == 0, tally.codes
    assert tally.wrong_id == 0
    assert not [code for code in tally.codes if code.startswith(("HTTP ", "client: "))], tally.codes


@pytest.mark.perf
def test_soak() -> None:
    result = run_soak(float(os.environ.get("SOAK_SECONDS", DEFAULT_SECONDS)))
    print("\n" + report(result))
    check(result)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.test_soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SECONDS:.0f} s")
    args = parser.parse_args(argv)
    result = run_soak(SMOKE_SECONDS if args.smoke else args.seconds)
    print(report(result))
    check(result)


if __name__ == "__main__":
    main(sys.argv[1:])
