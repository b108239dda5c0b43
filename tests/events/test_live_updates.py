"""Live updates on one replica, every piece real: the sandbox and the gateway each under uvicorn
on loopback, the sandbox's lifecycle moving recordings on and calling the gateway back signed
as each provider signs, a subscriber on a WebSocket authenticated with an API key in
``connection_init``. What the issue promises: the callback refreshes the cache, the subscriber
sees each change (``COMPLETED`` with the new duration), and the next ``recording(...)`` is
answered from the cache, the sandbox asked nothing more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.access.keys import key_hash, new_key
from app.main import create_app
from app.sandbox import DEMO_TWILIO_AUTH_TOKEN, Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.transcriptions import SandboxTranscription, new_id
from app.settings import Settings
from tests.events.live import (
    LIVE_EVENTS,
    MAX_STEPS,
    Seen,
    event_of,
    expect_events,
    point_at,
    step,
)
from tests.events.support import init, receive, socket, subscribe, until_active
from tests.servers import serve
from tests.support import RECORDING_QUERY, sandbox_env, upstream_count
from tests.webhooks.support import laml_signed

pytestmark = pytest.mark.anyio

KEY = new_key()


@dataclass(frozen=True)
class Deployment:
    sandbox: Sandbox
    url: str


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    config = SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    with serve(sandbox_app) as sandbox_url:
        # The operator's environment: the providers at the sandbox, each with the signing key
        # its callbacks carry (Twilio's: the auth token), one API key.
        env = sandbox_env(config, sandbox_url) | {
            "GATEWAY_API_KEYS": f"sha256:{key_hash(KEY)}",
            "GATEWAY_METRICS_TOKEN": "",
        }
        with serve(create_app(Settings.from_env(env))) as url:
            yield Deployment(sandbox_app.state.sandbox, url)


@pytest.fixture
async def client(deployment: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=deployment.url, headers=headers, timeout=30) as http:
        yield http


async def test_the_sandboxs_callbacks_reach_a_subscriber_and_refresh_the_cache(
    deployment: Deployment, client: httpx.AsyncClient
) -> None:
    sandbox = deployment.sandbox
    clock = point_at(sandbox, deployment.url)
    seen = Seen()
    async with socket(deployment.url) as ws:
        assert await init(ws, {"Authorization": f"Bearer {KEY}"}) == {"type": "connection_ack"}
        await subscribe(ws, "1", LIVE_EVENTS)
        await until_active(client, "default", 1)
        for _ in range(MAX_STEPS):
            sent = await step(sandbox, clock)
            await expect_events(ws, sandbox, sent, seen)
            if len(seen.completed) == 3:
                break
    assert sorted(seen.completed) == ["bird", "signalwire", "twilio"], seen.events.keys()
    # Every recording's first event was CREATED, and only the first.
    for events in seen.events.values():
        assert [e["type"] == "CREATED" for e in events] == [True] + [False] * (len(events) - 1)
    for provider, (rid, duration) in seen.completed.items():
        asked = upstream_count(sandbox, rid)
        variables = {"provider": provider.upper(), "id": rid}
        answer = await client.post(
            "/graphql", json={"query": RECORDING_QUERY, "variables": variables}
        )
        recording = answer.json()["data"]["recording"]
        assert upstream_count(sandbox, rid) == asked, f"{provider}: not answered from the cache"
        assert recording["status"] == "COMPLETED"
        assert recording["durationSeconds"] == duration


TRANSCRIBED = """
subscription Transcribed {
  recordingEvents {
    type
    recording { id transcriptions { id status text } }
  }
}
"""


async def test_an_events_transcriptions_are_read_afresh_for_each_event(
    deployment: Deployment, client: httpx.AsyncClient
) -> None:
    """A subscription's connection lives for hours: what one event read (a recording's
    transcriptions) must not be what a later event about the same recording shows."""
    sandbox = deployment.sandbox
    record = next(r for r in sandbox.dataset.listing("twilio") if r.ready)
    before = [t.id for t in sandbox.transcriptions.of("twilio", record.id, sandbox.now())]
    url = f"{deployment.url}/webhooks/twilio/default"
    account = ("AccountSid", sandbox.account("twilio"))
    completed = laml_signed(
        url,
        [account, ("RecordingSid", record.id), ("RecordingStatus", "completed")],
        DEMO_TWILIO_AUTH_TOKEN,
    )
    async with socket(deployment.url) as ws:
        assert await init(ws, {"Authorization": f"Bearer {KEY}"}) == {"type": "connection_ack"}
        await subscribe(ws, "1", TRANSCRIBED)
        await until_active(client, "default", 1)
        answer = await client.post(url, content=completed.body, headers=dict(completed.headers))
        assert answer.json() == {"outcome": "accepted"}
        first = event_of(await receive(ws))
        assert first["type"] == "COMPLETED"
        assert [t["id"] for t in first["recording"]["transcriptions"]] == before
        # The recording is transcribed (again): the provider calls back.
        now = sandbox.now()
        new = sandbox.transcriptions.add(
            SandboxTranscription(
                "twilio",
                new_id("twilio", f"{record.id}:live"),
                record.id,
                record.account,
                "completed",
                now,
                now,
                "The new words.",
            )
        )
        transcribed = laml_signed(
            url,
            [
                account,
                ("RecordingSid", record.id),
                ("TranscriptionSid", new.id),
                ("TranscriptionStatus", "completed"),
                ("TranscriptionText", "The new words."),
            ],
            DEMO_TWILIO_AUTH_TOKEN,
        )
        answer = await client.post(url, content=transcribed.body, headers=dict(transcribed.headers))
        assert answer.json() == {"outcome": "accepted"}
        second = event_of(await receive(ws))
    assert second["type"] == "TRANSCRIBED"
    texts = {t["id"]: t["text"] for t in second["recording"]["transcriptions"]}
    assert texts.get(new.id) == "The new words.", texts
