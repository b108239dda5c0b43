"""Webhook-to-subscriber latency: a provider's signed callback POSTed to the gateway, the
gateway's refresh from the provider, the event at a WebSocket subscriber. Run by hand
(tests/perf is not in the default run):

    python -m tests.perf.bench_live [--deliveries 300] [--rate 20] [--upstream-latency 0.05]

Every server is its own process: the sandbox (``python -m app sandbox``, the provider: its
refresh GET is part of what is measured), one or two gateways (``python -m app serve``, the
environment mode, one API key), and with two a ``redis-server`` as their
``GATEWAY_CACHE_URL``. This process is the provider's sender and the subscriber, over real
sockets on loopback, on one clock: a delivery's latency is the instant its subscriber
decoded the event minus the instant just before its POST was sent (signed already).

Deliveries are the sandbox's own callbacks (``app.sandbox.callbacks.callback_for``, signed
as each provider signs), one per seeded recording of each provider's account 0 in turn, in
the status the sandbox serves (its dataset is rebuilt here from the same seed): each names
another recording, so each makes one event. They are sent at ``--rate`` a second, each in
its own task (a slow answer never holds the next one back). Each run:

- one replica (memory bus): the POST and the subscriber on the same gateway;
- two replicas (Redis pub/sub): the POST to replica A, the subscriber on replica B;

first with the sandbox answering at once, then with ``--upstream-latency`` seconds added to
each of its answers (0: skipped). Printed per run: the latency's p50/p99/max, the POST's own
answer time (the acknowledgement), the gateways' CPU time per delivery, and the load average
before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import psutil

from app.access.keys import key_hash, new_key
from app.sandbox import DEMO, build_dataset
from app.sandbox.callbacks import Callback, callback_for, notifies
from app.sandbox.config import PROVIDERS
from tests.perf.bench_subscriptions import (
    describe,
    drained,
    redis_server,
    subscribers,
    until_subscribed,
)
from tests.perf.processes import Server, started
from tests.support import sandbox_env

KEY = new_key()
TENANT = "default"


def deliveries(count: int, recordings: int, sandbox_url: str, gateway_url: str) -> list[Callback]:
    """``count`` callbacks, the providers in turn, each about another recording."""
    config = replace(DEMO, recordings_per_provider=recordings)
    dataset = build_dataset(config)
    records = {
        provider: [r for r in dataset.listing(provider) if notifies(provider, r.status)]
        for provider in PROVIDERS
    }
    callbacks: list[Callback] = []
    for n in range(count):
        provider = PROVIDERS[n % len(PROVIDERS)]
        record = records[provider][n // len(PROVIDERS)]
        account = config.accounts(provider)[0]
        url = f"{gateway_url}/webhooks/{provider}/{TENANT}"
        callbacks.append(callback_for(record, account, url, sandbox_url))
    return callbacks


async def send_at_rate(
    callbacks: Sequence[Callback], rate: float
) -> tuple[dict[str, float], list[float]]:
    """POST each callback at ``rate`` a second; when each left (by recording id), and how
    long each answer took."""
    left: dict[str, float] = {}
    answered: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(callback: Callback) -> None:
            headers = callback.headers(datetime.now(UTC))
            began = time.time()
            left[callback.recording_id] = began
            answer = await client.post(callback.url, content=callback.body, headers=headers)
            answered.append(time.time() - began)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"outcome": "accepted"}, answer.text

        started_at = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        for n, callback in enumerate(callbacks):
            delay = started_at + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(callback)))
        await asyncio.gather(*tasks)
    return left, answered


def cpu_seconds(servers: Sequence[Server]) -> float:
    total = 0.0
    for server in servers:
        times = psutil.Process(server.pid).cpu_times()
        total += times.user + times.system
    return total


async def measure(
    label: str,
    post_to: Server,
    subscribe_on: Server,
    sandbox_url: str,
    count: int,
    rate: float,
    recordings: int,
) -> None:
    callbacks = deliveries(count, recordings, sandbox_url, post_to.url)
    gateways = [post_to] if post_to == subscribe_on else [post_to, subscribe_on]
    async with (
        httpx.AsyncClient(base_url=subscribe_on.url, timeout=30) as watcher,
        subscribers(subscribe_on.url, [None], key=KEY) as subs,
    ):
        await until_subscribed(watcher, 1, TENANT)
        load_before = os.getloadavg()
        cpu_before = cpu_seconds(gateways)
        left, answered = await send_at_rate(callbacks, rate)
        await drained(subs, {0: count}, 60)
        cpu = cpu_seconds(gateways) - cpu_before
        load_after = os.getloadavg()
    [sub] = subs
    assert len(sub.ids) == count and sub.missed == 0, (len(sub.ids), sub.missed)
    assert sorted(sub.ids) == sorted(left), "an event for a recording never called back"
    latencies = [arrived - left[rid] for rid, arrived in zip(sub.ids, sub.arrived, strict=True)]
    print(f"{label}: webhook -> subscriber {describe(latencies)}", flush=True)
    print(
        f"    acknowledgement {describe(answered)}; gateway CPU "
        f"{cpu / count * 1000:.2f} ms per delivery; load {load_before} -> {load_after}",
        flush=True,
    )


@contextlib.contextmanager
def gateway(sandbox_url: str, **extra: str) -> Iterator[Server]:
    env = sandbox_env(DEMO, sandbox_url) | {
        "GATEWAY_API_KEYS": f"sha256:{key_hash(KEY)}",
        "GATEWAY_SUBSCRIPTION_QUEUE": "1000",
        **extra,
    }
    with started(["serve"], env) as server:
        yield server


async def bench(count: int, rate: float, upstream_latency: float) -> None:
    recordings = count  # per account: plenty of each provider's statuses that call back
    print(f"{count} deliveries at {rate:g}/s; load average before: {os.getloadavg()}", flush=True)
    latencies = [0.0] + ([upstream_latency] if upstream_latency > 0 else [])
    for latency in latencies:
        sandbox_args = ["sandbox", "--latency", str(latency), "--recordings", str(recordings)]
        with started(sandbox_args) as sandbox:
            upstream = f"upstream +{latency * 1000:.0f} ms"
            with gateway(sandbox.url) as one:
                label = f"one replica, memory bus, {upstream}"
                await measure(label, one, one, sandbox.url, count, rate, recordings)
            with redis_server() as redis_url:
                with gateway(sandbox.url, GATEWAY_CACHE_URL=redis_url) as a:
                    with gateway(sandbox.url, GATEWAY_CACHE_URL=redis_url) as b:
                        label = f"replica A -> Redis -> replica B, {upstream}"
                        await measure(label, a, b, sandbox.url, count, rate, recordings)
    print(f"load average after: {os.getloadavg()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--upstream-latency", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.run(bench(args.deliveries, args.rate, args.upstream_latency))


if __name__ == "__main__":
    main()
