"""Media proxy benchmark: throughput, CPU per GB relayed and memory, beside nginx.

Run from the repository root (it prints figures; it asserts nothing)::

    python -m tests.perf.bench_media [--megabytes 1000] [--rounds 9] [--transports aiohttp,httpx]

The sandbox and the gateway each run in their own process under uvicorn, on loopback: one
gateway per upstream transport named (``GATEWAY_UPSTREAM_TRANSPORT``). The sandbox serves
three SignalWire recordings as mono WAVs: of ``--megabytes`` (long enough to measure a
steady rate: at 1-2 GB/s, 200 MB is over in a tenth of a second), ``--rss-megabytes`` and
``--slow-megabytes``. curl downloads the first, in turn, round after round: straight from
the sandbox, through each gateway's PROXY ``mediaUrl``, and, for calibration, through two
other hops: a bare TCP relay (a process on uvloop that copies bytes and parses nothing: the
cost of any extra Python hop on this machine) and, when ``nginx`` is installed, nginx's
``proxy_pass`` with buffering off (the reference reverse proxy, in C). The report gives
MB/s, how busy each process was, and each hop's CPU time per GB relayed.

Each comparison runs twice: with every process free to use every CPU ("shared"), and
with the sandbox and curl on CPU 0 and the hop in the middle (gateway, relay or nginx) on
CPU 1 ("pinned"), as in production, where the provider and the client are other machines.
On a 2-core machine, "shared" makes the proxy path's three busy processes take turns on
two cores; the CPU per GB figures are the pinned ones.

Memory, last: curl downloads the second recording through the first gateway ``--rounds``
times while a thread samples its RSS every 5 ms (the peak growth over its RSS just
before); then ``--slow-readers`` curls at once, each reading the third recording at
``--slow-rate`` MB/s, through each gateway and nginx in turn: the peak RSS growth of the
hop while they read, in all and per reader.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
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
    parser.add_argument("--megabytes", type=int, default=1000)
    parser.add_argument("--rss-megabytes", type=int, default=200)
    parser.add_argument("--slow-megabytes", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--slow-readers", type=int, default=8)
    parser.add_argument("--slow-rate", type=float, default=5, help="MB/s per slow reader")
    parser.add_argument("--slow-rounds", type=int, default=2)
    parser.add_argument("--transports", default="aiohttp,httpx")
    parser.add_argument("--sandbox-url", default="")
    parser.add_argument("--transport", default="aiohttp")
    args = parser.parse_args(argv)
    if args.role == "sandbox":
        run_sandbox([args.megabytes, args.rss_megabytes, args.slow_megabytes])
    elif args.role == "gateway":
        run_gateway(args.sandbox_url, args.transport)
    elif args.role == "relay":
        uvloop.run(run_relay(args.sandbox_url))
    else:
        bench(args)


# --- the servers, each in its own process ----------------------------------------------------


def run(app: Any, banner: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"{banner} http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def run_sandbox(sizes: list[int]) -> None:
    """The sandbox, with one ready SignalWire recording per size (in MB) as a mono WAV."""
    app = create_sandbox_app(CONFIG)
    dataset = app.state.sandbox.dataset
    ready = [record for record in dataset.listing("signalwire") if record.ready]
    for record, megabytes in zip(ready, sizes, strict=False):
        seconds = megabytes * 1_000_000 // MONO_WAV_BYTES_PER_SECOND
        dataset.put(replace(record, duration=seconds, channels=1))
    print("RECORDINGS", " ".join(record.id for record in ready[: len(sizes)]), flush=True)
    run(app, "SANDBOX")


def run_gateway(sandbox_url: str, transport: str) -> None:
    from app.cli import tune_gc
    from app.main import create_app
    from app.settings import Settings

    env = {**sandbox_env(CONFIG, sandbox_url), "GATEWAY_UPSTREAM_TRANSPORT": transport}
    app = create_app(Settings.from_env(env))
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


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    upstream sandbox {{ server {upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sandbox;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 256k;
        }}
    }}
}}
"""


@contextmanager
def nginx(upstream_url: str) -> Iterator[tuple[psutil.Process, str] | None]:
    """nginx (one process) proxying to ``upstream_url`` without buffering; None if absent."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        conf = Path(home, "nginx.conf")
        upstream = upstream_url.removeprefix("http://")
        conf.write_text(NGINX_CONF.format(home=home, upstream=upstream, port=port))
        process = subprocess.Popen([binary, "-c", str(conf), "-p", home])
        try:
            wait_for_port(port, process)
            yield psutil.Process(process.pid), f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Block until something accepts connections on ``port`` (or ``process`` has exited)."""
    while process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            threading.Event().wait(0.05)
    raise RuntimeError(f"nginx exited with {process.returncode}")


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
    """MB/s per run, and the CPU seconds each process spent per run and per GB."""

    speeds: list[float] = field(default_factory=list)
    busy: dict[str, list[float]] = field(default_factory=dict)
    per_gb: dict[str, list[float]] = field(default_factory=dict)

    def add(self, size: int, seconds: float, cpu: dict[str, float]) -> None:
        self.speeds.append(size / seconds / 1e6)
        for name, spent in cpu.items():
            if spent > 0.05 * seconds:  # leave out idle ones (CPU time comes in 10 ms ticks)
                self.busy.setdefault(name, []).append(100 * spent / seconds)
                self.per_gb.setdefault(name, []).append(1000 * spent / size * 1e9)  # ms

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
    written = subprocess.run(
        [*curl(cpus), "--write-out", "%{size_download} %{time_total}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    received, seconds = written.split()
    cpu = {name: sum(p.cpu_times()[:2]) - before[name] for name, p in processes.items()}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu["curl"] = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return int(received), float(seconds), cpu


def curl(cpus: str, *options: str) -> list[str]:
    taskset = ["taskset", "--cpu-list", cpus]
    return [*taskset, "curl", "--silent", "--fail", "--output", "/dev/null", *options]


PLACEMENTS = {  # CPUs for curl and the sandbox, and for the process in the middle
    "shared": ("0-1", "0-1"),
    "pinned": ("0", "1"),
}
DIRECT = "direct from the sandbox"


@dataclass
class Hop:
    """A process between curl and the sandbox, and the URL of each recording through it."""

    process: psutil.Process
    urls: list[str]


def bench(args: argparse.Namespace) -> None:
    transports = [name for name in args.transports.split(",") if name]
    with ExitStack() as stack:
        sizes = [
            f"--megabytes={args.megabytes}",
            f"--rss-megabytes={args.rss_megabytes}",
            f"--slow-megabytes={args.slow_megabytes}",
        ]
        sandbox, said = stack.enter_context(child("sandbox", *sizes))
        sandbox_url, rids = said["SANDBOX"], said["RECORDINGS"].split()
        paths = [
            f"/api/laml/2010-04-01/Accounts/{CONFIG.signalwire_project_id}/Recordings/{rid}.wav"
            for rid in rids
        ]
        hops: dict[str, Hop] = {}
        for transport in transports:
            gateway, started = stack.enter_context(
                child("gateway", "--sandbox-url", sandbox_url, "--transport", transport)
            )
            links = [media_url(started["GATEWAY"], rid) for rid in rids]
            hops[f"gateway ({transport})"] = Hop(gateway, links)
        relay, relayed = stack.enter_context(child("relay", "--sandbox-url", sandbox_url))
        hops["bare TCP relay"] = Hop(relay, [relayed["RELAY"] + path for path in paths])
        reference = stack.enter_context(nginx(sandbox_url))
        if reference is not None:
            process, nginx_url = reference
            hops["nginx proxy_pass"] = Hop(process, [nginx_url + path for path in paths])
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}; "
            + ("nginx found" if reference else "no nginx on PATH: its reference is left out")
        )
        processes = {"sandbox": sandbox} | {name: hop.process for name, hop in hops.items()}
        urls = {DIRECT: sandbox_url + paths[0]} | {
            f"through {name}": hop.urls[0] for name, hop in hops.items()
        }
        for placement, (outer, middle) in PLACEMENTS.items():
            sandbox.cpu_affinity(cpu_list(outer))
            for hop in hops.values():
                hop.process.cpu_affinity(cpu_list(middle))
            print(
                f"\n{placement}: curl and sandbox on CPU {outer}, the hop in the middle on {middle}"
            )
            measure(urls, processes, args.rounds, outer, per_gb=placement == "pinned")
        for hop in hops.values():
            hop.process.cpu_affinity(cpu_list("0-1"))
        sandbox.cpu_affinity(cpu_list("0-1"))
        print()
        first = next(iter(hops.values()))
        measure_rss(first.urls[1], first.process, args.rounds)
        slow = {name: hop for name, hop in hops.items() if name != "bare TCP relay"}
        measure_slow_readers(slow, args.slow_readers, args.slow_rate, args.slow_rounds)


def cpu_list(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def media_url(gateway_url: str, rid: str) -> str:
    """A PROXY mediaUrl minted by the gateway, after one small download to warm it up."""
    with httpx.Client(timeout=120) as client:
        body = client.post(
            f"{gateway_url}/graphql", json={"query": MEDIA_QUERY, "variables": {"id": rid}}
        )
        url: str = body.json()["data"]["recording"]["mediaUrl"]
        client.get(url, headers={"Range": "bytes=0-65535"})  # opens the upstream connection
        return url


def measure(
    urls: dict[str, str],
    processes: dict[str, psutil.Process],
    rounds: int,
    cpus: str,
    *,
    per_gb: bool,
) -> None:
    runs = {name: Runs() for name in urls}
    sizes: set[int] = set()
    for _ in range(rounds):  # interleaved: a slow spell of the machine hits every path
        for name, url in urls.items():
            size, seconds, cpu = download(url, processes, cpus)
            sizes.add(size)
            runs[name].add(size, seconds, cpu)
    assert len(sizes) == 1, f"the paths delivered different sizes: {sizes}"
    direct = runs[DIRECT].median
    print(f"file: {sizes.pop() / 1e6:.1f} MB WAV (SignalWire public media), {rounds} rounds")
    for name, result in runs.items():
        print(f"{name + ':':34} {result.median / direct:.2f}x, {result.describe()}")
    if not per_gb:
        return
    print("CPU time per GB relayed, each hop's own process (median, range over the rounds):")
    reference = None
    for name, result in runs.items():
        hop = name.removeprefix("through ")
        figures = result.per_gb.get(hop)
        if name == DIRECT or not figures:
            continue
        median = statistics.median(figures)
        reference = median if hop == "nginx proxy_pass" else reference
        print(f"  {hop + ':':26} {median:4.0f} ms ({min(figures):.0f}-{max(figures):.0f})")
    if reference:
        for name, result in runs.items():
            hop = name.removeprefix("through ")
            if hop.startswith("gateway") and hop in result.per_gb:
                ratio = statistics.median(result.per_gb[hop]) / reference
                print(f"  {hop}: {ratio:.2f}x nginx's (goal: at most 1.6x)")


def measure_rss(url: str, gateway: psutil.Process, rounds: int) -> None:
    """The gateway's peak RSS growth while it streams ``url`` to curl ``rounds`` times."""
    baseline = gateway.memory_info().rss
    with RssSampler(gateway) as rss:
        for _ in range(rounds):
            size, _, _ = download(url, {}, "0-1")
    print(
        f"gateway RSS while streaming a {size / 1e6:.0f} MB WAV {rounds} times: "
        f"{baseline / 1e6:.1f} MB before, peak {rss.peak / 1e6:.1f} MB: "
        f"growth {(rss.peak - baseline) / 1e6:.1f} MB (target < 30 MB)"
    )


def measure_slow_readers(hops: dict[str, Hop], readers: int, rate: float, rounds: int) -> None:
    """Each hop's peak RSS growth while ``readers`` curls read through it at ``rate`` MB/s."""
    print(f"\n{readers} slow readers at once, each at {rate:g} MB/s: peak RSS growth of the hop")
    growth: dict[str, list[float]] = {name: [] for name in hops}
    for _ in range(rounds):  # interleaved, as above
        for name, hop in hops.items():
            limit = ["--limit-rate", str(int(rate * 1e6))]
            baseline = hop.process.memory_info().rss
            with RssSampler(hop.process) as rss:
                downloads = [
                    subprocess.Popen(curl("0-1", *limit, hop.urls[2])) for _ in range(readers)
                ]
                for reader in downloads:
                    if reader.wait() != 0:
                        raise RuntimeError(f"curl through {name} exited with {reader.returncode}")
            growth[name].append((rss.peak - baseline) / 1e6)
    for name, figures in growth.items():
        each = ", ".join(f"{v:.1f}" for v in figures)
        worst = max(figures)
        print(
            f"  {name + ':':26} {each} MB; at most {worst / readers:.1f} MB per reader"
            + (" (goal: at most 4 MB)" if name.startswith("gateway") else "")
        )


if __name__ == "__main__":
    main()
