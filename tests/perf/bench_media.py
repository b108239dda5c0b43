"""Media proxy benchmark: throughput against the sandbox directly, and the gateway's memory.

Run from the repository root (it prints figures; it asserts nothing)::

    python -m tests.perf.bench_media [--megabytes 200] [--rounds 9]

The sandbox and the gateway each run in their own process under uvicorn, on loopback.
The sandbox serves one SignalWire recording as a WAV of ``--megabytes``; curl downloads
it straight from the sandbox, through a PROXY ``mediaUrl``, and, for calibration, through
a bare TCP relay (a process on uvloop that copies bytes and parses nothing: the cost of
any extra Python hop on this machine), in turn, and the report gives MB/s and how busy
each process was. A thread samples the gateway's RSS every 5 ms meanwhile; the report
gives the peak growth over its RSS just before.

Each comparison runs twice: with every process free to use every CPU ("shared"), and
with the sandbox and curl on CPU 0 and the gateway (or relay) on CPU 1 ("pinned"), as in
production, where the provider and the client are other machines. On a 2-core machine,
"shared" makes the proxy path's three busy processes take turns on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import psutil
import uvicorn
import uvloop

from app.sandbox import SandboxConfig, create_sandbox_app
from tests.support import sandbox_env

CONFIG = SandboxConfig()
MONO_WAV_BYTES_PER_SECOND = 16000
MEDIA_QUERY = """
query($id: ID!) { recording(provider: SIGNALWIRE, id: $id) { mediaUrl(format: WAV) } }
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    roles = ["bench", "sandbox", "gateway", "relay"]
    parser.add_argument("role", nargs="?", default="bench", choices=roles)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sandbox-url", default="")
    args = parser.parse_args(argv)
    if args.role == "sandbox":
        run_sandbox(args.megabytes)
    elif args.role == "gateway":
        run_gateway(args.sandbox_url)
    elif args.role == "relay":
        uvloop.run(run_relay(args.sandbox_url))
    else:
        bench(args.megabytes, args.rounds)


# --- the two servers, each in its own process ------------------------------------------------


def run(app: Any, banner: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"{banner} http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def run_sandbox(megabytes: int) -> None:
    app = create_sandbox_app(CONFIG)
    sandbox = app.state.sandbox
    rid = sandbox.sample_ids()["signalwire"]
    record = sandbox.dataset.get("signalwire", rid)
    seconds = megabytes * 1_000_000 // MONO_WAV_BYTES_PER_SECOND
    sandbox.dataset.put(replace(record, duration=seconds, channels=1))
    print(f"RECORDING {rid}", flush=True)
    run(app, "SANDBOX")


def run_gateway(sandbox_url: str) -> None:
    from app.cli import tune_gc
    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings.from_env(sandbox_env(CONFIG, sandbox_url)))
    tune_gc()  # as `recording-gateway serve` does
    run(app, "GATEWAY")


async def run_relay(upstream_url: str) -> None:
    """Copies bytes both ways between each client and the upstream; parses nothing."""
    port = int(upstream_url.rsplit(":", 1)[1])

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(256 * 1024):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"RELAY http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def child(*args: str) -> Iterator[tuple[psutil.Process, dict[str, str]]]:
    """A server process running this script, and what it printed before serving."""
    command = [sys.executable, "-m", "tests.perf.bench_media", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    said: dict[str, str] = {}
    for line in process.stdout:  # blocks until the server has its socket
        key, _, value = line.strip().partition(" ")
        said[key] = value
        if key in ("SANDBOX", "GATEWAY", "RELAY"):
            break
    try:
        yield psutil.Process(process.pid), said
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- the client ------------------------------------------------------------------------------


@dataclass
class Runs:
    """MB/s per run, and the CPU seconds each process spent per run."""

    speeds: list[float] = field(default_factory=list)
    busy: dict[str, list[float]] = field(default_factory=dict)

    def add(self, size: int, seconds: float, cpu: dict[str, float]) -> None:
        self.speeds.append(size / seconds / 1e6)
        for name, spent in cpu.items():
            self.busy.setdefault(name, []).append(100 * spent / seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.speeds)

    def describe(self) -> str:
        runs = ", ".join(f"{v:.0f}" for v in self.speeds)
        busy = ", ".join(f"{k} {statistics.median(v):.0f}%" for k, v in self.busy.items())
        return f"median {self.median:.0f} MB/s (runs: {runs}); CPU busy: {busy}"


class RssSampler:
    """The peak RSS of a process, sampled every few milliseconds in a thread."""

    def __init__(self, process: psutil.Process, interval: float = 0.005) -> None:
        self.process = process
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)


def download(url: str, processes: dict[str, psutil.Process], cpus: str) -> Any:
    """Bytes received, seconds taken and CPU seconds per process, with curl as the client.

    curl (C, like the browsers and BI tools that follow a ``mediaUrl``) keeps the client's
    own cost out of the comparison; a Python client saturates its core before the servers.
    """
    before = {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = ["taskset", "--cpu-list", cpus, "curl", "--silent", "--fail", "--output", "/dev/null"]
    written = subprocess.run(
        [*command, "--write-out", "%{size_download} %{time_total}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    received, seconds = written.split()
    cpu = {name: sum(p.cpu_times()[:2]) - before[name] for name, p in processes.items()}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu["curl"] = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return int(received), float(seconds), cpu


PLACEMENTS = {  # CPUs for curl and the sandbox, and for the process in the middle
    "shared": ("0-1", "0-1"),
    "pinned": ("0", "1"),
}


def bench(megabytes: int, rounds: int) -> None:
    with child("sandbox", "--megabytes", str(megabytes)) as (sandbox, said):
        sandbox_url, rid = said["SANDBOX"], said["RECORDING"]
        with (
            child("gateway", "--sandbox-url", sandbox_url) as (gateway, started),
            child("relay", "--sandbox-url", sandbox_url) as (relay, relayed),
        ):
            processes = {"sandbox": sandbox, "gateway": gateway, "relay": relay}
            urls = {
                "sandbox": sandbox_url,
                "gateway": started["GATEWAY"],
                "relay": relayed["RELAY"],
            }
            print(
                f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
                f"{platform.python_version()}, {platform.system()} {platform.release()}"
            )
            for placement, (outer, middle) in PLACEMENTS.items():
                sandbox.cpu_affinity(cpu_list(outer))
                gateway.cpu_affinity(cpu_list(middle))
                relay.cpu_affinity(cpu_list(middle))
                print(f"\n{placement}: curl and sandbox on CPU {outer}, gateway/relay on {middle}")
                measure(urls, rid, processes, rounds, outer)


def cpu_list(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def measure(
    urls: dict[str, str], rid: str, processes: dict[str, psutil.Process], rounds: int, cpus: str
) -> None:
    path = f"/api/laml/2010-04-01/Accounts/{CONFIG.signalwire_project_id}/Recordings/{rid}.wav"
    direct_url, relay_url, gateway_url = (
        urls["sandbox"] + path,
        urls["relay"] + path,
        urls["gateway"],
    )
    direct, proxied, relayed = Runs(), Runs(), Runs()
    with httpx.Client(timeout=120) as client:
        body = client.post(
            f"{gateway_url}/graphql", json={"query": MEDIA_QUERY, "variables": {"id": rid}}
        )
        proxy_url = body.json()["data"]["recording"]["mediaUrl"]
        client.get(proxy_url, headers={"Range": "bytes=0-65535"})  # warm the upstream path up
    baseline = processes["gateway"].memory_info().rss
    with RssSampler(processes["gateway"]) as rss:
        for _ in range(rounds):
            size, seconds, cpu = download(direct_url, processes, cpus)
            direct.add(size, seconds, cpu)
            proxied_size, seconds, cpu = download(proxy_url, processes, cpus)
            assert proxied_size == size, (proxied_size, size)
            proxied.add(size, seconds, cpu)
            relayed.add(*download(relay_url, processes, cpus))
    report(size, direct, proxied, relayed, baseline, rss.peak)


def report(size: int, direct: Runs, proxied: Runs, relayed: Runs, baseline: int, peak: int) -> None:
    print(f"file: {size / 1e6:.1f} MB WAV (SignalWire public media), {len(direct.speeds)} rounds")
    print(f"direct from the sandbox: {direct.describe()}")
    print(f"through the gateway:     {proxied.describe()}")
    print(f"through a bare TCP relay: {relayed.describe()}")
    print(
        f"ratio proxy/direct: {proxied.median / direct.median:.2f} (target >= 0.8); "
        f"bare relay/direct: {relayed.median / direct.median:.2f}"
    )
    print(
        f"gateway RSS: {baseline / 1e6:.1f} MB before, peak {peak / 1e6:.1f} MB while "
        f"streaming: growth {(peak - baseline) / 1e6:.1f} MB (target < 30 MB)"
    )


if __name__ == "__main__":
    main()
