"""Issue 14 figures: ``serve --workers 1`` against ``--workers 2`` on this machine.

Run on demand (the default test run leaves tests/perf out); it needs ``wrk``
(``apt-get install wrk``):

    python -m pytest tests/perf/test_workers_perf.py -s
    python -m tests.perf.test_workers_perf [rounds] [seconds]

Processes, all on loopback: the sandbox providers with 50 ms added to every answer; four
gateways over it, started side by side and idle but for the one measured: one worker and two,
each with the memory cache (the cached case: the same 30 recordings again and again, warmed
first) and with ``none://`` (the uncached case: every request calls its provider, cycling over
600 recordings); and wrk (one thread, 32 connections, a Lua script that POSTs the query) as the
load generator. Rounds are interleaved, one worker then two, then two then one, and each
records: requests/s, p50 and p99 (wrk's ``--latency``), the gateway's CPU time per request
(every process of it: the supervisor and its workers, read before and after by psutil), and
the load average. It prints the medians over the rounds; it asserts only that every answer
was a 200 without errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil
import pytest

from app.sandbox import DEMO, build_dataset
from tests.perf.processes import free_port, run
from tests.support import sandbox_env

LATENCY = 0.05
RECORDINGS = 200
CONNECTIONS = 32
ROUNDS = 5
SECONDS = 5
ONE = "query One($p: Provider!, $id: ID!) { recording(provider: $p, id: $id) { id status } }"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Gateway:
    """A gateway process: its URL and its supervisor's (or only) process."""

    url: str
    process: psutil.Process

    def processes(self) -> list[psutil.Process]:
        return [self.process, *self.process.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for each in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = each.cpu_times()
                total += times.user + times.system
        return total

    def worker_rss_mb(self) -> list[float]:
        """RSS of each process that serves (the workers; the process itself with one)."""
        children = [
            p for p in self.process.children() if "multiprocessing.spawn" in p.cmdline()[-2]
        ]
        return [p.memory_info().rss / 2**20 for p in (children or [self.process])]


@contextlib.contextmanager
def gateway(env: Mapping[str, str], workers: int) -> Iterator[Gateway]:
    """``serve --workers N``, yielded once each worker has started its app."""
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--workers", str(workers), "--port", str(port)]
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with subprocess.Popen(
        command, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        try:
            assert process.stdout is not None
            started = 0
            for line in process.stdout:
                started += "Application startup complete" in line
                if started == workers:
                    break
            else:
                raise RuntimeError(f"{command} exited before its workers started")
            # Keep reading, or the server blocks writing its access log into a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            yield Gateway(f"http://127.0.0.1:{port}", psutil.Process(process.pid))
        finally:
            process.terminate()
            process.wait(timeout=60)


def ids(count: int) -> list[tuple[str, str]]:
    """``count`` (provider, id) of recordings whose media is ready, over the three providers."""
    dataset = build_dataset(replace(DEMO, recordings_per_provider=RECORDINGS))
    lists = {
        name: [r.id for r in dataset.listing(name) if r.ready]
        for name in ("twilio", "signalwire", "bird")
    }
    picked: list[tuple[str, str]] = []
    while len(picked) < count and any(lists.values()):
        for name, found in lists.items():
            if found and len(picked) < count:
                picked.append((name.upper(), found.pop()))
    return picked


def lua(refs: list[tuple[str, str]]) -> str:
    """A wrk script that POSTs ``ONE`` for each of ``refs`` in turn."""
    bodies = [
        json.dumps({"query": ONE, "variables": {"p": provider, "id": rid}})
        for provider, rid in refs
    ]
    quoted = ",\n".join(f"  [==[{body}]==]" for body in bodies)
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{\n{quoted}\n}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  return wrk.format(nil, "/graphql", nil, bodies[(n % #bodies) + 1])\n'
        "end\n"
    )


@dataclass(frozen=True)
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the gateway's CPU time per request
    load: float  # the one-minute load average after the round


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert found is not None, text
    return float(found[1]) * _UNITS[found[2]]


def wrk(target: Gateway, script: Path, seconds: int) -> Round:
    before = target.cpu_seconds()
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            target.url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = target.cpu_seconds() - before
    out = done.stdout
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    return Round(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M)[1]),  # type: ignore[index]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M)[1]),  # type: ignore[index]
        cpu_ms=cpu * 1000 / requests,
        load=os.getloadavg()[0],
    )


def check(target: Gateway, refs: list[tuple[str, str]]) -> None:
    """Every query answers its recording, without errors (and warms the connections)."""
    with httpx.Client(base_url=target.url, timeout=60) as client:
        for provider, rid in refs:
            body = client.post(
                "/graphql", json={"query": ONE, "variables": {"p": provider, "id": rid}}
            ).json()
            assert body == {
                "data": {"recording": {"id": rid, "status": body["data"]["recording"]["status"]}}
            }, body


def median(rounds: list[Round], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in rounds))


def measure(rounds: int = ROUNDS, seconds: int = SECONDS) -> dict[tuple[str, int], list[Round]]:
    assert shutil.which("wrk"), "wrk is needed: apt-get install wrk"
    cases = {"cached": ("memory://", ids(30)), "uncached": ("none://", ids(600))}
    results: dict[tuple[str, int], list[Round]] = {}
    sandbox_args = ["sandbox", "--latency", str(LATENCY), "--recordings", str(RECORDINGS)]
    with (
        run(sandbox_args) as sandbox_url,
        tempfile.TemporaryDirectory() as scratch,
        contextlib.ExitStack() as stack,
    ):
        env = sandbox_env(DEMO, sandbox_url)
        targets: dict[tuple[str, int], tuple[Gateway, Path]] = {}
        for case, (cache, refs) in cases.items():
            script = Path(scratch) / f"{case}.lua"
            script.write_text(lua(refs))
            for workers in (1, 2):
                target = stack.enter_context(gateway(env | {"GATEWAY_CACHE_URL": cache}, workers))
                check(target, refs[:30])
                wrk(target, script, 2)  # warm-up: every worker's cache and connections
                targets[case, workers] = (target, script)
        for number in range(rounds):
            order = (1, 2) if number % 2 == 0 else (2, 1)
            for case in cases:
                for workers in order:
                    target, script = targets[case, workers]
                    results.setdefault((case, workers), []).append(wrk(target, script, seconds))
        for (case, workers), (target, _) in targets.items():
            rss = ", ".join(f"{mb:.0f}" for mb in target.worker_rss_mb())
            print(f"{case} x{workers}: RSS per worker after the rounds {rss} MB")
    return results


def report(results: dict[tuple[str, int], list[Round]]) -> str:
    lines = [
        "| case | workers | req/s | p50 ms | p99 ms | CPU ms/req | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for (case, workers), rounds in results.items():
        loads = [r.load for r in rounds]
        rps, p50, p99 = (median(rounds, name) for name in ("rps", "p50_ms", "p99_ms"))
        lines.append(
            f"| {case} | {workers} | {rps:.0f} | {p50:.1f} | {p99:.1f} | "
            f"{median(rounds, 'cpu_ms'):.2f} | "
            f"{min(loads):.1f}-{max(loads):.1f} |"
        )
    for case in ("cached", "uncached"):
        one, two = results[case, 1], results[case, 2]
        ratios = [b.rps / a.rps for a, b in zip(one, two, strict=True)]
        lines.append(
            f"\n{case}: 2 workers / 1, req/s per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f" (median {statistics.median(ratios):.2f}x)"
        )
    return "\n".join(lines)


@pytest.mark.perf
def test_one_worker_against_two() -> None:
    print("\n" + report(measure()))


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    print(report(measure(*arguments)))
