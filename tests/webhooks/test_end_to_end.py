"""Over real sockets: the sandbox and the gateway each under uvicorn on loopback, a provider
delivery signed as the provider signs it, and what follows: 2xx at once, the recording
refreshed (the next query a cache hit with the new state) and a subscriber told."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.events import EventBus, RecordingEvent, RecordingEventType, Subscription
from app.main import create_app
from app.sandbox import DEMO_TWILIO_AUTH_TOKEN, Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.servers import serve
from tests.support import RECORDING_QUERY, upstream_count
from tests.webhooks.support import StateCapture, laml_signed, webhook_env


@dataclass
class Deployment:
    sandbox: Sandbox
    url: str
    gateway: StateCapture

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the gateway's event loop (its bus lives there)."""
        assert self.gateway.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.gateway.loop).result(30)


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    config = SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    with serve(sandbox_app) as sandbox_url:
        settings = Settings.from_env(webhook_env(config, sandbox_url))
        gateway = StateCapture(create_app(settings))
        with serve(gateway) as url:
            yield Deployment(sandbox_app.state.sandbox, url, gateway)


async def subscribe(events: EventBus) -> Subscription:
    return events.subscribe("default")


async def next_event(subscription: Subscription) -> RecordingEvent:
    delivery = await asyncio.wait_for(anext(aiter(subscription)), 20)
    return delivery.event


def test_a_signed_delivery_refreshes_the_cache_and_reaches_a_subscriber(
    deployment: Deployment,
) -> None:
    sandbox = deployment.sandbox
    record = next(r for r in sandbox.dataset.listing("twilio") if r.status == "in-progress")
    variables = {"provider": "TWILIO", "id": record.id}
    graphql = {"query": RECORDING_QUERY, "variables": variables}
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        before = client.post("/graphql", json=graphql).json()["data"]["recording"]
        assert before["status"] == "IN_PROGRESS"
        subscription = deployment.run(subscribe(deployment.gateway.state["events"]))
        sandbox.dataset.put(dataclasses.replace(record, status="completed", duration=37))
        params = [
            ("AccountSid", sandbox.account("twilio")),
            ("CallSid", "CA" + "3" * 32),
            ("RecordingSid", record.id),
            ("RecordingStatus", "completed"),
            ("RecordingDuration", "37"),
        ]
        url = f"{deployment.url}/webhooks/twilio/default"
        delivery = laml_signed(url, params, DEMO_TWILIO_AUTH_TOKEN)
        answer = client.post(url, content=delivery.body, headers=dict(delivery.headers))
        assert answer.status_code == 200 and answer.json() == {"outcome": "accepted"}
        event = deployment.run(next_event(subscription))
        assert event.type is RecordingEventType.COMPLETED
        assert (event.recording.id, event.recording.duration_seconds) == (record.id, 37)
        seen = upstream_count(sandbox, record.id)
        after = client.post("/graphql", json=graphql)
        assert upstream_count(sandbox, record.id) == seen  # answered from the cache
    recording = after.json()["data"]["recording"]
    assert (recording["status"], recording["durationSeconds"]) == ("COMPLETED", 37)
