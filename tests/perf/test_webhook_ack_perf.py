"""Issue 15: how fast a verified provider webhook is acknowledged, and its CPU.

Run on demand (the default test run leaves tests/perf out):

    python -m pytest tests/perf/test_webhook_ack_perf.py -s

Two processes on loopback: the sandbox, answering each request ``LATENCY`` seconds late (a
provider across the Internet), and the gateway (``memory://`` cache). Each delivery is a
signed Twilio ``recordingStatusCallback`` for a distinct recording, sent from 8 concurrent
clients: the gateway verifies it, claims it and answers, then refreshes the recording after
the answer. The figures: the answer's latency (p50, p99, max; goal p99 < 100 ms, and below
the provider's own latency: the answer never waits for it) and the gateway's CPU time per
delivery while they are sent (psutil; the refreshes running meanwhile included), with the
load average, since the machine is shared. It asserts only correctness (every delivery
accepted); that the answer never waits for the provider is tests/webhooks/test_work.py's.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import replace

import httpx
import psutil

from app.sandbox import DEMO, DEMO_TWILIO_AUTH_TOKEN, build_dataset
from tests.perf.processes import run, started
from tests.support import sandbox_env
from tests.webhooks.support import Delivery, laml_signed

LATENCY = 0.25
RECORDINGS = 400
CLIENTS = 8
PUBLIC = "http://gateway.perf"


def test_webhook_acknowledgement_latency_and_cpu() -> None:
    dataset = build_dataset(replace(DEMO, recordings_per_provider=RECORDINGS))
    account = DEMO.accounts("twilio")[0].account
    ids = [r.id for r in dataset.listing("twilio", account)]
    url = f"{PUBLIC}/webhooks/twilio/default"
    deliveries = [
        laml_signed(
            url,
            [("AccountSid", account), ("RecordingSid", rid), ("RecordingStatus", "completed")],
            DEMO_TWILIO_AUTH_TOKEN,
        )
        for rid in ids
    ]
    sandbox_args = ["sandbox", "--latency", str(LATENCY), "--recordings", str(RECORDINGS)]
    with run(sandbox_args) as sandbox_url:
        env = {**sandbox_env(DEMO, sandbox_url), "GATEWAY_PUBLIC_URL": PUBLIC}
        with started(["serve"], env) as gateway:
            process = psutil.Process(gateway.pid)
            latencies, cpu = asyncio.run(send(gateway.url, deliveries, process))
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\nwebhook ack: {len(latencies)} deliveries, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1]:.1f} ms; gateway CPU {cpu * 1000 / len(latencies):.2f} ms per "
        f"delivery; load average {os.getloadavg()[0]:.2f}"
    )


async def send(
    url: str, deliveries: list[Delivery], process: psutil.Process
) -> tuple[list[float], float]:
    """Send every delivery (CLIENTS at a time); their latencies (ms) and the gateway's CPU."""
    queue = list(deliveries)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker() -> None:
            while queue:
                delivery = queue.pop()
                began = time.perf_counter()
                answer = await client.post(
                    delivery.path, content=delivery.body, headers=dict(delivery.headers)
                )
                latencies.append((time.perf_counter() - began) * 1000)
                assert answer.json() == {"outcome": "accepted"}, answer.text

        before = process.cpu_times()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        after = process.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return latencies, cpu
