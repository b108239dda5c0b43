"""Subscriptions under load: publish-to-subscriber latency on one replica and across two (Redis
pub/sub), then many subscribers at a steady event rate. Run by hand (tests/perf is not in
the default run):

    python -m tests.perf.bench_subscriptions latency [--events 300] [--rate 20]
    python -m tests.perf.bench_subscriptions load [--subscribers 1000] [--rate 100]
        [--seconds 60] [--per-call 10] [--dashboards 10]

Every gateway is its own process (``tests.perf.subscription_gateway``: the app with the
tests' publishing hook, ``POST /test/publish``, standing in for the webhook receivers); the
subscribers and the publisher are this process, over real WebSockets on loopback. An event's
``at`` is the instant this process sent it to the hook; a subscriber's latency is the instant
it decoded the event minus ``at`` (one clock: the same machine). With two replicas, each runs
``RedisBus`` on one ``redis-server`` (started here): events are published on replica A and
received by subscribers on replica B.

Load: ``--subscribers`` sockets on one replica, each with one subscription. ``--dashboards`` of
them take every event (no filter); the others filter by ``callId``, ``--per-call`` to a call,
and each event names one call in turn, so every event matches ``dashboards + per-call``
subscribers. It checks that every subscriber received exactly the events it matches, in
order, with no ``missed``, and records the gateway's RSS and CPU time, and the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect

from app.access.keys import new_key
from app.events import codec
from app.models import Provider
from app.sandbox import SandboxConfig
from tests.access.support import TenantSpec, write_config
from tests.events.support import PROTOCOL, recording_event, ws_url
from tests.perf.processes import free_port

KEY = new_key()
QUERY = """subscription Events($filter: RecordingEventFilter) {
  recordingEvents(filter: $filter) { type at missed recording { provider id callId status } }
}"""


@dataclass(frozen=True)
class Gateway:
    url: str
    process: psutil.Process


@contextlib.contextmanager
def gateway(env: Mapping[str, str]) -> Iterator[Gateway]:
    """A gateway process; yielded once uvicorn says it is listening."""
    port = free_port()
    command = [sys.executable, "-m", "tests.perf.subscription_gateway", str(port)]
    with subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if "Uvicorn running on" in line:
                    break
            else:
                raise RuntimeError(f"{command} exited before listening")
            threading.Thread(target=process.stdout.read, daemon=True).start()
            yield Gateway(f"http://127.0.0.1:{port}", psutil.Process(process.pid))
        finally:
            process.terminate()
            process.wait(timeout=30)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free port; its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        with subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--dir", directory],
            stdout=subprocess.PIPE,
            text=True,
        ) as process:
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    if "Ready to accept connections" in line:
                        break
                threading.Thread(target=process.stdout.read, daemon=True).start()
                yield f"redis://127.0.0.1:{port}/0"
            finally:
                process.terminate()
                process.wait(timeout=30)


def gateway_env(directory: Path, **extra: str) -> dict[str, str]:
    config = write_config(directory / "gateway.toml", SandboxConfig(), {"acme": TenantSpec(KEY)})
    return {**config, "GATEWAY_SUBSCRIPTION_QUEUE": "1000", **extra}


@dataclass
class Subscriber:
    """One socket with one subscription, and what it received."""

    ws: ClientConnection
    call: str | None
    ids: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    #: When each event was decoded (wall clock), in order: the live benchmark's end time.
    arrived: list[float] = field(default_factory=list)
    missed: int = 0

    async def read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            received = time.time()
            if message.get("type") != "next":
                raise AssertionError(f"unexpected message {message}")
            event = message["payload"]["data"]["recordingEvents"]
            self.latencies.append(received - datetime.fromisoformat(event["at"]).timestamp())
            self.ids.append(event["recording"]["id"])
            self.arrived.append(received)
            self.missed += event["missed"] or 0


@contextlib.asynccontextmanager
async def subscribers(
    url: str, calls: list[str | None], *, key: str = KEY, concurrency: int = 50
) -> AsyncIterator[list[Subscriber]]:
    """One subscriber per entry of ``calls`` (its ``callId`` filter, None: every event),
    each connected, acknowledged and subscribed, and reading in a task."""
    gate = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:

        async def open_one(call: str | None) -> Subscriber:
            async with gate:
                ws = await stack.enter_async_context(
                    connect(
                        ws_url(url),
                        subprotocols=[PROTOCOL],  # type: ignore[list-item]
                        max_queue=None,
                        open_timeout=60,
                    )
                )
                init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
                await ws.send(json.dumps(init))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                variables = {"filter": {"callId": call}} if call is not None else {}
                payload = {"query": QUERY, "variables": variables}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                return Subscriber(ws, call)

        opened = await asyncio.gather(*(open_one(call) for call in calls))
        tasks = [asyncio.create_task(each.read()) for each in opened]
        try:
            yield list(opened)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def until_subscribed(client: httpx.AsyncClient, count: int, tenant: str = "acme") -> None:
    """Until the gateway holds ``count`` subscriptions of ``tenant`` (its /metrics gauge)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = (await client.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith(f'gateway_subscriptions_active{{tenant="{tenant}"}}'):
                if float(line.split()[-1]) >= count:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the gateway never held {count} subscriptions")


async def publish_at_rate(
    client: httpx.AsyncClient, count: int, rate: float, call_of: Any
) -> float:
    """Publish ``count`` events at ``rate`` a second, in order; the seconds it took. Each
    hook call carries the events due by then (one, unless the publisher fell behind), each
    stamped as it is sent."""
    started = time.monotonic()
    sent = 0
    while sent < count:
        due = min(count, int((time.monotonic() - started) * rate) + 1)
        if due <= sent:
            await asyncio.sleep(started + sent / rate - time.monotonic())
            continue
        lines = [
            codec.encode(
                "bench",
                recording_event(
                    "acme", f"RE{n:032d}", provider=Provider.TWILIO, call_id=call_of(n)
                ),
            )
            for n in range(sent, due)
        ]
        response = await client.post("/test/publish", content=b"\n".join(lines))
        assert response.status_code == 204, response.text
        sent = due
    return time.monotonic() - started


async def drained(subs: list[Subscriber], expected: Mapping[int, int], timeout: float) -> None:
    """Until each subscriber has received ``expected[index]`` events (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(s.ids) >= expected[i] for i, s in enumerate(subs)):
            return
        await asyncio.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(latencies: list[float]) -> str:
    ms = [value * 1000 for value in latencies]
    return (
        f"n={len(ms)} p50={percentile(ms, 0.5):.1f} ms p99={percentile(ms, 0.99):.1f} ms "
        f"max={max(ms):.1f} ms mean={statistics.fmean(ms):.1f} ms"
    )


async def latency_run(publish_url: str, subscribe_url: str, events: int, rate: float) -> str:
    async with (
        httpx.AsyncClient(base_url=publish_url, timeout=30) as publisher,
        httpx.AsyncClient(base_url=subscribe_url, timeout=30) as watcher,
        subscribers(subscribe_url, [None]) as subs,
    ):
        await until_subscribed(watcher, 1)
        await publish_at_rate(publisher, events, rate, lambda n: None)
        await drained(subs, {0: events}, 30)
        [sub] = subs
        assert len(sub.ids) == events and sub.missed == 0, (len(sub.ids), sub.missed)
        return describe(sub.latencies)


async def latency(events: int, rate: float) -> None:
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        with gateway(gateway_env(Path(directory))) as one:
            figures = await latency_run(one.url, one.url, events, rate)
            print(f"one replica (memory bus): {figures}", flush=True)
        with redis_server() as redis_url:
            env = gateway_env(Path(directory), GATEWAY_CACHE_URL=redis_url)
            with gateway(env) as a, gateway(env) as b:
                figures = await latency_run(a.url, b.url, events, rate)
                print(f"replica A -> Redis -> replica B: {figures}", flush=True)
                same = await latency_run(a.url, a.url, events, rate)
                print(f"one replica (Redis bus, local delivery): {same}", flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)


@dataclass(frozen=True)
class Plan:
    """What a load run publishes and who should receive what."""

    events: int
    calls: int  # events name calls CA0..CA{calls-1} in turn

    def call_of(self, n: int) -> str:
        return f"CA{n % self.calls}"

    def wanted(self, call: str | None) -> list[str]:
        return [
            f"RE{n:032d}" for n in range(self.events) if call is None or self.call_of(n) == call
        ]


@dataclass(frozen=True)
class WorkerResult:
    delivered: int
    wrong: int
    missed: int
    latencies: list[float]


def subscriber_worker(
    url: str, key: str, calls: list[str | None], plan: Plan, timeout: float
) -> WorkerResult:
    """A process of its own holding ``calls``' subscribers until each has all its events
    (or ``timeout`` seconds after they subscribed)."""

    async def run() -> WorkerResult:
        async with subscribers(url, calls, key=key) as subs:
            wanted = [plan.wanted(call) for call in calls]
            await drained(subs, {i: len(w) for i, w in enumerate(wanted)}, timeout)
            wrong = sum(
                1 for sub, w in zip(subs, wanted, strict=True) if sub.ids != w or sub.missed
            )
            return WorkerResult(
                delivered=sum(len(sub.ids) for sub in subs),
                wrong=wrong,
                missed=sum(sub.missed for sub in subs),
                latencies=[value for sub in subs for value in sub.latencies],
            )

    return asyncio.run(run())


async def load(
    subscribers_count: int,
    rate: float,
    seconds: float,
    per_call: int,
    dashboards: int,
    workers: int,
) -> None:
    filtered = subscribers_count - dashboards
    plan = Plan(events=int(rate * seconds), calls=max(1, filtered // per_call))
    calls: list[str | None] = [None] * dashboards + [
        f"CA{index % plan.calls}" for index in range(filtered)
    ]
    print(
        f"{subscribers_count} subscribers ({dashboards} unfiltered, {filtered} over "
        f"{plan.calls} calls) in {workers} client processes, {rate:g} events/s for "
        f"{seconds:g} s = {plan.events} events; each event matches "
        f"{dashboards + filtered // plan.calls} subscribers",
        flush=True,
    )
    print(f"load average before: {os.getloadavg()}", flush=True)
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory() as directory,
        gateway(gateway_env(Path(directory))) as one,
        concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool,
    ):
        rss_idle = one.process.memory_info().rss
        timeout = seconds * 3 + 120
        futures = [
            loop.run_in_executor(
                pool, subscriber_worker, one.url, KEY, calls[i::workers], plan, timeout
            )
            for i in range(workers)
        ]
        async with httpx.AsyncClient(base_url=one.url, timeout=30) as client:
            await until_subscribed(client, subscribers_count)
            rss_subscribed = one.process.memory_info().rss
            cpu_before = one.process.cpu_times()
            peak = rss_subscribed
            sampling = True

            async def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, one.process.memory_info().rss)
                    await asyncio.sleep(1)

            sampler = asyncio.create_task(sample())
            took = await publish_at_rate(client, plan.events, rate, plan.call_of)
            results = await asyncio.gather(*futures)
            sampling = False
            await sampler
            cpu_after = one.process.cpu_times()
    load_after = os.getloadavg()
    expected = sum(len(plan.wanted(call)) for call in calls)
    delivered = sum(r.delivered for r in results)
    wrong = sum(r.wrong for r in results)
    latencies = [value for r in results for value in r.latencies]
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    mb = 1024 * 1024
    print(f"published {plan.events} events in {took:.1f} s ({plan.events / took:.1f}/s)")
    print(
        f"deliveries {delivered} (expected {expected}); subscribers with a wrong or "
        f"incomplete stream: {wrong}; missed: {sum(r.missed for r in results)}"
    )
    print(f"latency: {describe(latencies)}")
    print(
        f"gateway RSS: idle {rss_idle / mb:.0f} MB, {subscribers_count} subscribed "
        f"{rss_subscribed / mb:.0f} MB, peak under load {peak / mb:.0f} MB"
    )
    print(
        f"gateway CPU: {cpu:.1f} s while publishing and draining "
        f"({cpu / max(1, delivered) * 1e6:.0f} µs per delivery)"
    )
    print(f"load average after: {load_after}", flush=True)
    assert wrong == 0, "some subscriber did not get exactly its events"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    lat = commands.add_parser("latency")
    lat.add_argument("--events", type=int, default=300)
    lat.add_argument("--rate", type=float, default=20.0)
    ld = commands.add_parser("load")
    ld.add_argument("--subscribers", type=int, default=1000)
    ld.add_argument("--rate", type=float, default=100.0)
    ld.add_argument("--seconds", type=float, default=60.0)
    ld.add_argument("--per-call", type=int, default=10)
    ld.add_argument("--dashboards", type=int, default=10)
    ld.add_argument("--workers", type=int, default=2, help="client processes")
    args = parser.parse_args()
    if args.command == "latency":
        asyncio.run(latency(args.events, args.rate))
    else:
        asyncio.run(
            load(
                args.subscribers,
                args.rate,
                args.seconds,
                args.per_call,
                args.dashboards,
                args.workers,
            )
        )


if __name__ == "__main__":
    main()
