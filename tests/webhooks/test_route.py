"""The receivers, in process against the sandbox: what is refused (and that nothing then
happens upstream), what is acknowledged, and what a verified delivery does."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.events import RecordingEvent, RecordingEventType, Subscription
from app.models import Provider
from app.sandbox import DEMO_TWILIO_AUTH_TOKEN, Sandbox, SandboxConfig
from app.sandbox.transcriptions import SandboxTranscription
from app.settings import Settings
from app.webhooks.route import MAX_BODY_BYTES
from tests.support import RECORDING_QUERY, SANDBOX_URL, sandbox_env, upstream_count
from tests.webhooks.support import (
    BIRD_KEY,
    BIRD_RECORDED_AT,
    GATEWAY,
    SIGNALWIRE_KEY,
    Delivery,
    Gateway,
    bird_signed,
    laml_signed,
    recorded,
    running,
    webhook_env,
)

pytestmark = pytest.mark.anyio

PUBLIC = "https://gateway.example.com"


@pytest.fixture
async def gateway(sandbox_config: SandboxConfig, sandbox_app: Starlette) -> AsyncIterator[Gateway]:
    settings = Settings.from_env(webhook_env(sandbox_config, SANDBOX_URL))
    async with running(settings, httpx.ASGITransport(app=sandbox_app)) as gateway:
        yield gateway


@pytest.fixture
async def proxied(sandbox_config: SandboxConfig, sandbox_app: Starlette) -> AsyncIterator[Gateway]:
    """A gateway behind a reverse proxy: the providers call ``PUBLIC``."""
    env = webhook_env(sandbox_config, SANDBOX_URL) | {"GATEWAY_PUBLIC_URL": PUBLIC}
    async with running(Settings.from_env(env), httpx.ASGITransport(app=sandbox_app)) as gateway:
        gateway.webhooks.clock = lambda: float(BIRD_RECORDED_AT)
        yield gateway


async def events_of(gateway: Gateway, subscription: Subscription) -> list[RecordingEvent]:
    """What reached ``subscription`` once the work started so far has ended."""
    await gateway.webhooks.idle()
    gateway.events.unsubscribe(subscription)
    return [delivery.event async for delivery in subscription]


def twilio(sandbox: Sandbox, rid: str, status: str, url: str = "") -> Delivery:
    account = sandbox.account("twilio")
    params = [
        ("AccountSid", account),
        ("CallSid", "CA" + "0" * 32),
        ("RecordingSid", rid),
        ("RecordingStatus", status),
        ("ErrorCode", "0"),
    ]
    return laml_signed(url or f"{GATEWAY}/webhooks/twilio/default", params, DEMO_TWILIO_AUTH_TOKEN)


def set_status(sandbox: Sandbox, provider: str, rid: str, status: str, **changes: Any) -> None:
    record = sandbox.dataset.get(provider, rid)
    assert record is not None
    sandbox.dataset.put(dataclasses.replace(record, status=status, **changes))


def first_with(sandbox: Sandbox, provider: str, status: str) -> str:
    return next(r.id for r in sandbox.dataset.listing(provider) if r.status == status)


async def query(gateway: Gateway, provider: Provider, rid: str) -> dict[str, Any]:
    variables = {"provider": provider.name, "id": rid}
    response = await gateway.client.post(
        "/graphql", json={"query": RECORDING_QUERY, "variables": variables}
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    recording: dict[str, Any] = body["data"]["recording"]
    return recording


# --- recorded deliveries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "name", "outcome"),
    [
        ("twilio", "recording_in_progress", "accepted"),
        ("twilio", "recording_completed", "accepted"),
        ("twilio", "recording_absent", "accepted"),
        ("twilio", "transcription_completed", "accepted"),
        ("twilio", "call_status", "ignored"),
        ("signalwire", "recording_in_progress", "accepted"),
        ("signalwire", "recording_completed", "accepted"),
        ("signalwire", "transcription_completed", "accepted"),
        ("bird", "recording_available", "accepted"),
        ("bird", "transcription_completed", "accepted"),
        ("bird", "voice_outbound_completed", "ignored"),
    ],
)
async def test_recorded_deliveries_are_verified_behind_the_public_url(
    proxied: Gateway, provider: str, name: str, outcome: str
) -> None:
    response = await proxied.deliver(recorded(provider, name))
    assert response.status_code == 200, response.text
    assert response.json() == {"outcome": outcome}
    assert response.headers["cache-control"] == "no-store"
    await proxied.webhooks.idle()


async def test_without_the_public_url_the_gateway_checks_its_own_url(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    # Signed for the public URL, received at the gateway's own: not the URL signed.
    response = await gateway.deliver(recorded("twilio", "recording_completed"))
    assert response.status_code == 403
    rid = sandbox.sample_ids()["twilio"]
    assert (await gateway.deliver(twilio(sandbox, rid, "completed"))).status_code == 200


async def test_behind_a_proxy_the_gateways_own_url_is_refused(
    proxied: Gateway, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    assert (await proxied.deliver(twilio(sandbox, rid, "completed"))).status_code == 403
    public = twilio(sandbox, rid, "completed", f"{PUBLIC}/webhooks/twilio/default")
    assert (await proxied.deliver(public)).status_code == 200


# --- refusals: nothing happens ---------------------------------------------------------


def tampered_deliveries(sandbox: Sandbox) -> Iterator[tuple[str, Delivery]]:
    rid = sandbox.sample_ids()["twilio"]
    good = twilio(sandbox, rid, "completed")
    yield (
        "tampered body",
        dataclasses.replace(good, body=good.body.replace(b"completed", b"absent")),
    )
    elsewhere = twilio(sandbox, rid, "completed", f"{GATEWAY}/webhooks/twilio/default?x=1")
    yield "wrong URL", dataclasses.replace(elsewhere, url=good.url)
    headers = {k: v for k, v in good.headers.items() if k != "X-Twilio-Signature"}
    yield "missing header", dataclasses.replace(good, headers=headers)
    yield "wrong key", laml_signed(good.url, [("RecordingSid", rid)], "not-the-auth-token")
    bird = sandbox.sample_ids()["bird"]
    event = {"service": "channels", "event": "voice.recording", "payload": {"id": bird}}
    url = f"{GATEWAY}/webhooks/bird/default"
    old = bird_signed(url, event, BIRD_KEY, BIRD_RECORDED_AT)
    yield "old timestamp", old
    no_stamp = {k: v for k, v in old.headers.items() if k != "MessageBird-Request-Timestamp"}
    yield "missing timestamp", dataclasses.replace(old, headers=no_stamp)
    sw = sandbox.sample_ids()["signalwire"]
    sw_url = f"{GATEWAY}/webhooks/signalwire/default"
    yield "another key", laml_signed(sw_url, [("RecordingSid", sw)], DEMO_TWILIO_AUTH_TOKEN)


async def test_bad_or_missing_signatures_are_refused_and_nothing_else_happens(
    gateway: Gateway, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    subscription = gateway.events.subscribe("default")
    caplog.set_level(logging.WARNING, logger="app.webhooks")
    for name, delivery in tampered_deliveries(sandbox):
        response = await gateway.deliver(delivery)
        assert response.status_code == 403, name
        assert response.json()["error"]["code"] == "WEBHOOK_SIGNATURE_INVALID", name
    assert await events_of(gateway, subscription) == []
    assert sandbox.requests == []
    refusals = [r for r in caplog.records if "webhook refused" in r.getMessage()]
    assert len(refusals) == 7
    logged = caplog.text
    for secret in (DEMO_TWILIO_AUTH_TOKEN, BIRD_KEY, SIGNALWIRE_KEY):
        assert secret not in logged


async def test_no_receiver_is_404_alike_for_an_unknown_tenant_and_a_provider_without_key(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    environ = sandbox_env(sandbox_config)
    del environ["SIGNALWIRE_SIGNING_KEY"], environ["BIRD_WEBHOOK_SIGNING_KEY"]
    settings = Settings.from_env(environ)  # no SignalWire or Bird key
    async with running(settings, httpx.ASGITransport(app=sandbox_app)) as gateway:
        answers = [
            await gateway.client.post(path, content=b"RecordingSid=x")
            for path in (
                "/webhooks/signalwire/default",
                "/webhooks/bird/default",
                "/webhooks/twilio/acme",
            )
        ]
        assert (await gateway.client.post("/webhooks/twilio/default")).status_code == 403
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["error"]["code"] == "NOT_FOUND"


async def test_only_post_is_served(gateway: Gateway) -> None:
    response = await gateway.client.get("/webhooks/twilio/default")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_a_body_over_64_kib_is_413_declared_or_streamed(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    big = b"RecordingSid=" + b"x" * MAX_BODY_BYTES
    declared = await gateway.client.post("/webhooks/twilio/default", content=big)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"x" * 4096

    streamed = await gateway.client.post("/webhooks/bird/default", content=chunks())
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sandbox.requests == []


# --- verified deliveries ---------------------------------------------------------------


async def test_a_delivery_refreshes_the_recording_and_announces_its_new_state(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    rid = first_with(sandbox, "twilio", "in-progress")
    before = await query(gateway, Provider.TWILIO, rid)
    assert before["status"] == "IN_PROGRESS"
    subscription = gateway.events.subscribe("default")
    first = await gateway.deliver(twilio(sandbox, rid, "in-progress"))
    assert first.json() == {"outcome": "accepted"}
    await gateway.webhooks.idle()  # the work runs after the answer
    set_status(sandbox, "twilio", rid, "completed", duration=42)
    done = await gateway.deliver(twilio(sandbox, rid, "completed"))
    assert done.json() == {"outcome": "accepted"}
    events = await events_of(gateway, subscription)
    assert [e.type for e in events] == [RecordingEventType.CREATED, RecordingEventType.COMPLETED]
    assert {e.tenant for e in events} == {"default"}
    assert events[1].recording.duration_seconds == 42
    seen = upstream_count(sandbox, rid)
    after = await query(gateway, Provider.TWILIO, rid)  # a cache hit: no upstream request
    assert upstream_count(sandbox, rid) == seen
    assert (after["status"], after["durationSeconds"]) == ("COMPLETED", 42)


async def test_a_repeated_delivery_is_acknowledged_and_makes_one_event(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["signalwire"]
    url = f"{GATEWAY}/webhooks/signalwire/default"
    params = [("AccountSid", sandbox.account("signalwire")), ("RecordingSid", rid)]
    delivery = laml_signed(
        url, [*params, ("RecordingStatus", "completed")], SIGNALWIRE_KEY, "X-SignalWire-Signature"
    )
    subscription = gateway.events.subscribe("default")
    outcomes = [(await gateway.deliver(delivery)).json()["outcome"] for _ in range(3)]
    assert outcomes == ["accepted", "duplicate", "duplicate"]
    [event] = await events_of(gateway, subscription)
    assert event.type is RecordingEventType.COMPLETED
    assert upstream_count(sandbox, rid) == 1


async def test_two_deliveries_leading_to_one_state_make_one_event(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]  # completed at the provider already
    subscription = gateway.events.subscribe("default")
    for status in ("in-progress", "completed"):
        assert (await gateway.deliver(twilio(sandbox, rid, status))).status_code == 200
    events = await events_of(gateway, subscription)
    assert [e.type for e in events] == [RecordingEventType.COMPLETED]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("absent", RecordingEventType.FAILED),
        ("deleted", RecordingEventType.DELETED),
        ("paused", RecordingEventType.CREATED),
    ],
)
async def test_the_event_type_follows_the_refreshed_status(
    gateway: Gateway, sandbox: Sandbox, status: str, expected: RecordingEventType
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    set_status(sandbox, "twilio", rid, status)
    subscription = gateway.events.subscribe("default")
    await gateway.deliver(twilio(sandbox, rid, status))
    [event] = await events_of(gateway, subscription)
    assert event.type is expected


async def test_a_recording_gone_at_the_provider_is_deleted(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    await query(gateway, Provider.BIRD, rid)  # cached: the event carries its last state
    sandbox.dataset.delete("bird", rid)
    subscription = gateway.events.subscribe("default")
    url = f"{GATEWAY}/webhooks/bird/default"
    event = {"service": "channels", "event": "voice.recording", "payload": {"id": rid}}
    stamp = int(gateway.webhooks.clock())
    assert (await gateway.deliver(bird_signed(url, event, BIRD_KEY, stamp))).status_code == 200
    [got] = await events_of(gateway, subscription)
    assert got.type is RecordingEventType.DELETED
    assert got.recording.id == rid and got.recording.status.value == "deleted"
    assert got.recording.duration_seconds is not None  # the last state held


async def test_a_transcription_callback_announces_transcribed(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    params = [
        ("AccountSid", sandbox.account("twilio")),
        ("RecordingSid", rid),
        ("TranscriptionSid", "TR" + "1" * 32),
        ("TranscriptionStatus", "completed"),
        ("TranscriptionText", "hello"),
    ]
    subscription = gateway.events.subscribe("default")
    delivery = laml_signed(f"{GATEWAY}/webhooks/twilio/default", params, DEMO_TWILIO_AUTH_TOKEN)
    assert (await gateway.deliver(delivery)).json() == {"outcome": "accepted"}
    failed = [(k, "failed" if k == "TranscriptionStatus" else v) for k, v in params]
    failed = [(k, "TR" + "2" * 32 if k == "TranscriptionSid" else v) for k, v in failed]
    await gateway.deliver(laml_signed(delivery.url, failed, DEMO_TWILIO_AUTH_TOKEN))
    [event] = await events_of(gateway, subscription)
    assert event.type is RecordingEventType.TRANSCRIBED
    assert event.recording.id == rid


async def test_a_transcription_callback_makes_the_next_query_read_the_new_text(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    document = (
        "query T($id: ID!) { recording(provider: TWILIO, id: $id) { transcriptions { id text } } }"
    )

    async def texts() -> list[str | None]:
        answer = await gateway.client.post(
            "/graphql", json={"query": document, "variables": {"id": rid}}
        )
        body: dict[str, Any] = answer.json()
        assert "errors" not in body, body
        return [t["text"] for t in body["data"]["recording"]["transcriptions"]]

    before = await texts()
    asked = upstream_count(sandbox, rid)
    assert await texts() == before and upstream_count(sandbox, rid) == asked  # cached
    now = sandbox.now()
    sandbox.transcriptions.add(
        SandboxTranscription(
            "twilio",
            "TR" + "3" * 32,
            rid,
            sandbox.account("twilio"),
            "completed",
            now,
            now,
            "a brand new transcript",
        )
    )
    params = [
        ("AccountSid", sandbox.account("twilio")),
        ("RecordingSid", rid),
        ("TranscriptionSid", "TR" + "3" * 32),
        ("TranscriptionStatus", "completed"),
        ("TranscriptionText", "a brand new transcript"),
    ]
    delivery = laml_signed(f"{GATEWAY}/webhooks/twilio/default", params, DEMO_TWILIO_AUTH_TOKEN)
    assert (await gateway.deliver(delivery)).json() == {"outcome": "accepted"}
    await gateway.webhooks.idle()
    assert await texts() == ["a brand new transcript", *before]


async def test_verified_deliveries_the_gateway_does_not_act_on_are_ignored_with_2xx(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    bird_url = f"{GATEWAY}/webhooks/bird/default"
    twilio_url = f"{GATEWAY}/webhooks/twilio/default"
    stamp = int(gateway.webhooks.clock())
    sms = {"service": "channels", "event": "sms.outbound", "payload": {}}
    not_ours = [
        ("AccountSid", "AC" + "9" * 32),
        ("RecordingSid", sandbox.sample_ids()["twilio"]),
        ("RecordingStatus", "completed"),
    ]
    deliveries = [
        bird_signed(bird_url, b"not json", BIRD_KEY, stamp),
        bird_signed(bird_url, sms, BIRD_KEY, stamp),
        twilio(sandbox, "RE-not-an-id", "completed"),
        laml_signed(twilio_url, [("CallStatus", "ringing")], DEMO_TWILIO_AUTH_TOKEN),
        laml_signed(twilio_url, not_ours, DEMO_TWILIO_AUTH_TOKEN),
    ]
    for delivery in deliveries:
        response = await gateway.deliver(delivery)
        assert response.status_code == 200, delivery
        assert response.json() == {"outcome": "ignored"}, delivery
    assert sandbox.requests == []


async def test_cached_answers_holding_the_old_state_are_purged(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    variables = {"provider": "TWILIO", "id": rid}
    body = {"query": RECORDING_QUERY, "variables": variables}
    answers = [await gateway.client.post("/graphql", json=body) for _ in range(2)]
    assert [a.headers["x-cache"] for a in answers] == ["MISS", "HIT"]
    set_status(sandbox, "twilio", rid, "completed", duration=99)
    assert (await gateway.deliver(twilio(sandbox, rid, "completed"))).status_code == 200
    await gateway.webhooks.idle()
    seen = upstream_count(sandbox, rid)
    after = await gateway.client.post("/graphql", json=body)
    assert after.headers["x-cache"] == "MISS"  # the old answer is gone ...
    assert after.json()["data"]["recording"]["durationSeconds"] == 99
    assert upstream_count(sandbox, rid) == seen  # ... and the recording came from the cache
