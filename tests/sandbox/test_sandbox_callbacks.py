"""The sandbox's status callbacks, as a receiver on a real socket gets them.

- Twilio and SignalWire post `RecordingStatusCallback` form parameters, exactly the documented
  ones, consistent with what their REST API says of the recording; Bird posts a JSON delivery.
- Every signature verifies with a check written here from the providers' published algorithms
  (not the sandbox's code), over the URL the receiver was called at; the Twilio check is first
  proven on the example of Twilio's own documentation.
- Retries: a 5xx or an unreachable URL is retried up to the configured attempts and then given
  up; a 4xx is not retried; the sandbox's API keeps answering either way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette

from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.callbacks import twilio_signature
from app.sandbox.config import DEFAULT_PUBLIC_URL
from app.sandbox.data import SandboxRecording
from tests.sandbox.clock import Clock
from tests.sandbox.receiver import Received, Receiver, receiver

PUBLIC_URL = "http://sandbox.test"
FORM = "application/x-www-form-urlencoded"
COMPAT_PARAMS = {
    "AccountSid",
    "RecordingSid",
    "RecordingUrl",
    "RecordingStatus",
    "RecordingDuration",
    "RecordingChannels",
    "RecordingStartTime",
    "RecordingSource",
    "RecordingTrack",
    "ErrorCode",
}


def twilio_check(key: str, url: str, form: list[tuple[str, str]]) -> str:
    """Twilio's algorithm as its security docs state it: the URL, then each POST parameter's
    name and value sorted by name, HMAC-SHA1 with the auth token, base64."""
    data = url + "".join(name + value for name, value in sorted(form))
    return base64.b64encode(hmac.new(key.encode(), data.encode(), hashlib.sha1).digest()).decode()


def bird_check(key: str, timestamp: str, url: str, body: bytes) -> str:
    """Bird's "Verifying a webhook": HMAC-SHA256 over timestamp, URL and the body's binary
    SHA-256, joined by newlines, base64."""
    joined = timestamp.encode() + b"\n" + url.encode() + b"\n" + hashlib.sha256(body).digest()
    return base64.b64encode(hmac.new(key.encode(), joined, hashlib.sha256).digest()).decode()


#: The example of Twilio's "Validating requests" docs (twilio-php's RequestValidator too).
TWILIO_DOC_EXAMPLE = (
    "12345",
    "https://mycompany.com/myapp.php?foo=1&bar=2",
    [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ],
    "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
)


def test_the_twilio_check_and_the_sandbox_agree_with_twilios_documented_example() -> None:
    key, url, form, expected = TWILIO_DOC_EXAMPLE
    assert twilio_check(key, url, form) == expected
    assert twilio_signature(key, url, dict(form)) == expected


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def config_for(hook: Receiver, **changes: Any) -> SandboxConfig:
    urls = {p: f"{hook.url}/webhooks/{p}/default" for p in ("twilio", "signalwire", "bird")}
    base = SandboxConfig(
        recordings_per_provider=3,
        callback_urls=urls,
        public_url=PUBLIC_URL,
        callback_backoff=0.0,
        callback_attempts=3,
    )
    return replace(base, **changes)


@pytest.fixture
def app(hook: Receiver) -> Starlette:
    return create_sandbox_app(config_for(hook))


@pytest.fixture
def sandbox(app: Starlette) -> Sandbox:
    state: Sandbox = app.state.sandbox
    state.clock = Clock()
    return state


async def rest(client: httpx.AsyncClient, sandbox: Sandbox, record: SandboxRecording) -> Any:
    """The recording as its provider's REST API returns it now."""
    account = sandbox.accounts(record.provider)[0]
    if record.provider == "bird":
        headers = {"authorization": f"AccessKey {account.secret}"}
        path = f"/workspaces/{record.account}/recordings/{record.id}"
        return (await client.get(path, headers=headers)).json()
    prefix = "" if record.provider == "twilio" else "/api/laml"
    path = f"{prefix}/2010-04-01/Accounts/{record.account}/Recordings/{record.id}.json"
    return (await client.get(path, auth=(account.account, account.secret))).json()


async def run_until(sandbox: Sandbox, provider: str, status: str) -> SandboxRecording:
    """Step the clock (10 s per step) until a recording of account 0 reaches `status`."""
    account = sandbox.account(provider)
    for _ in range(40):
        assert isinstance(sandbox.clock, Clock)
        sandbox.clock.now += timedelta(seconds=10)
        for record in await sandbox.lifecycle.step():
            if (record.provider, record.account, record.status) == (provider, account, status):
                return record
    raise AssertionError(f"no {provider} recording reached {status}")


def form_of(received: Received) -> list[tuple[str, str]]:
    return parse_qsl(received.body.decode(), keep_blank_values=True, strict_parsing=True)


def callbacks_for(hook: Receiver, provider: str, record_id: str) -> list[Received]:
    found = []
    for each in hook.to(f"/webhooks/{provider}/default"):
        if provider == "bird":
            matches = json.loads(each.body)["payload"]["id"] == record_id
        else:
            matches = dict(form_of(each))["RecordingSid"] == record_id
        if matches:
            found.append(each)
    return found


# --- Twilio and SignalWire -------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["twilio", "signalwire"])
async def test_compat_callbacks_carry_the_documented_parameters_signed(
    provider: str, hook: Receiver, sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    record = await run_until(sandbox, provider, "completed")
    received = callbacks_for(hook, provider, record.id)
    statuses = [dict(form_of(each))["RecordingStatus"] for each in received]
    assert statuses == ["in-progress", "completed"]  # queued and processing call nobody back
    account = sandbox.accounts(provider)[0]
    body = await rest(client, sandbox, record)
    for each in received:
        form = form_of(each)
        params = dict(form)
        assert each.method == "POST"
        assert each.headers["content-type"] == FORM
        assert len(params) == len(form)  # no parameter repeated
        expected = set(COMPAT_PARAMS)
        if body["call_sid"] is not None:
            expected.add("CallSid")
        if body["conference_sid"] is not None:
            expected.add("ConferenceSid")
        assert set(params) == expected
        signature = twilio_check(account.signing_key, each.url, form)
        assert each.headers["x-twilio-signature"] == signature
        if provider == "signalwire":
            assert each.headers["x-signalwire-signature"] == signature
            assert account.signing_key != account.secret  # the Signing Key, not the API token
        else:
            assert account.signing_key == account.secret  # Twilio signs with the auth token
    final = dict(form_of(received[-1]))
    assert final["AccountSid"] == body["account_sid"] == account.account
    assert final.get("CallSid") == body["call_sid"]
    assert final.get("ConferenceSid") == body["conference_sid"]
    assert final["RecordingStatus"] == body["status"] == "completed"
    assert int(final["RecordingDuration"]) == int(body["duration"]) == record.duration
    assert final["RecordingChannels"] == str(body["channels"])
    assert final["RecordingSource"] == body["source"]
    assert final["RecordingTrack"] == "both"
    assert final["ErrorCode"] == "0"
    started = parsedate_to_datetime(final["RecordingStartTime"])
    assert started == parsedate_to_datetime(body["start_time"])
    prefix = "" if provider == "twilio" else "/api/laml"
    media = f"{prefix}/2010-04-01/Accounts/{account.account}/Recordings/{record.id}"
    assert final["RecordingUrl"] == f"{PUBLIC_URL}{media}"
    played = await client.get(media, auth=(account.account, account.secret))
    assert played.status_code == 200 and played.headers["content-type"] == "audio/x-wav"
    running = dict(form_of(received[0]))
    assert running["RecordingDuration"] == ("-1" if provider == "twilio" else "0")


@pytest.mark.anyio
async def test_twilio_sends_one_idempotency_token_per_event(
    hook: Receiver, sandbox: Sandbox
) -> None:
    sandbox.set_callback_url("bird", None)  # the scripted answers are all Twilio's
    hook.answers = [503, 200]
    await sandbox.lifecycle.step()
    first, again = hook.to("/webhooks/twilio/default")
    assert first.body == again.body
    assert (
        first.headers["i-twilio-idempotency-token"] == again.headers["i-twilio-idempotency-token"]
    )
    await run_until(sandbox, "twilio", "completed")
    tokens = {
        each.headers["i-twilio-idempotency-token"] for each in hook.to("/webhooks/twilio/default")
    }
    assert len(tokens) > 1


@pytest.mark.anyio
async def test_an_absent_recording_calls_back_with_its_error_code(
    hook: Receiver, sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    record = await run_until(sandbox, "twilio", "absent")
    [*_, last] = callbacks_for(hook, "twilio", record.id)
    params = dict(form_of(last))
    body = await rest(client, sandbox, record)
    assert params["RecordingStatus"] == body["status"] == "absent"
    assert params["ErrorCode"] == str(body["error_code"]) and body["error_code"] in (16101, 16102)
    assert params["RecordingDuration"] == body["duration"] == "0"


# --- Bird ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_bird_posts_signed_json_deliveries_of_each_status(
    hook: Receiver, sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    record = await run_until(sandbox, "bird", "available")
    received = callbacks_for(hook, "bird", record.id)
    events = [json.loads(each.body) for each in received]
    assert [e["payload"]["status"] for e in events] == [
        "accepted",
        "ongoing",
        "completed",
        "available",
    ]
    account = sandbox.accounts("bird")[0]
    for each in received:
        assert each.headers["content-type"] == "application/json"
        timestamp = each.headers["messagebird-request-timestamp"]
        assert abs(int(timestamp) - time.time()) < 300  # Unix seconds, now
        expected = bird_check(account.signing_key, timestamp, each.url, each.body)
        assert each.headers["messagebird-signature"] == expected
        assert each.headers["messagebird-request-id"]
    assert len({each.headers["messagebird-request-id"] for each in received}) == len(received)
    last = events[-1]
    assert set(last) == {"service", "event", "payload"}
    assert (last["service"], last["event"]) == ("channels", "voice.recording")
    body = await rest(client, sandbox, record)
    assert body.pop("url").startswith(PUBLIC_URL)  # the presigned link is minted per request
    assert last["payload"] == body
    assert body["duration"] == record.duration > 0


@pytest.mark.anyio
async def test_a_tampered_bird_delivery_does_not_verify(hook: Receiver, sandbox: Sandbox) -> None:
    """The independent check is not a tautology: it refuses what Bird did not sign."""
    await sandbox.lifecycle.step()
    [delivery] = hook.to("/webhooks/bird/default")
    timestamp = delivery.headers["messagebird-request-timestamp"]
    key = sandbox.accounts("bird")[0].signing_key
    signature = delivery.headers["messagebird-signature"]
    assert bird_check(key, timestamp, delivery.url, delivery.body) == signature
    assert bird_check(key, timestamp, delivery.url, delivery.body + b" ") != signature
    assert bird_check(key, str(int(timestamp) - 1), delivery.url, delivery.body) != signature
    assert bird_check(key, timestamp, delivery.url + "x", delivery.body) != signature


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_5xx_is_retried_up_to_the_attempts_then_given_up(
    hook: Receiver, sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    sandbox.set_callback_url("signalwire", None)
    sandbox.set_callback_url("bird", None)
    hook.answers = [500] * 10
    [created, *_] = await sandbox.lifecycle.step()
    assert created.provider == "twilio"
    arrived = hook.to("/webhooks/twilio/default")
    assert len(arrived) == 3  # callback_attempts, and no more
    assert len({each.body for each in arrived}) == 1  # the same event each time
    log = [sent for sent in sandbox.callbacks if sent.recording_id == created.id]
    assert [(s.attempt, s.status_code, s.delivered) for s in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 500, False),
    ]
    assert (await rest(client, sandbox, created))["status"] == "in-progress"  # the API answers


@pytest.mark.anyio
async def test_a_5xx_then_a_2xx_is_delivered_and_a_4xx_is_not_retried(
    hook: Receiver, sandbox: Sandbox
) -> None:
    sandbox.set_callback_url("signalwire", None)
    sandbox.set_callback_url("bird", None)
    hook.answers = [502, 200]
    await sandbox.lifecycle.step()
    assert [(s.attempt, s.status_code) for s in sandbox.callbacks] == [(1, 502), (2, 200)]
    assert sandbox.callbacks[-1].delivered
    sandbox.callbacks.clear()
    hook.answers = [403] * 10
    await run_until(sandbox, "twilio", "completed")
    assert sandbox.callbacks and all(s.attempt == 1 for s in sandbox.callbacks)


@pytest.mark.anyio
async def test_bird_retries_anything_but_a_2xx(hook: Receiver, sandbox: Sandbox) -> None:
    """Bird: "If Bird does not receive a 2xx response ... it will automatically retry"."""
    sandbox.set_callback_url("twilio", None)
    sandbox.set_callback_url("signalwire", None)
    hook.answers = [403, 404, 200]
    await sandbox.lifecycle.step()
    assert [(s.provider, s.attempt, s.status_code) for s in sandbox.callbacks] == [
        ("bird", 1, 403),
        ("bird", 2, 404),
        ("bird", 3, 200),
    ]
    ids = {each.headers["messagebird-request-id"] for each in hook.to("/webhooks/bird/default")}
    assert len(ids) == 1  # one event, delivered three times


@pytest.mark.anyio
async def test_credentials_in_a_callback_url_are_used_but_never_logged(
    hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Twilio accepts `https://user:password@host/...` callback URLs (HTTP auth)."""
    authority = hook.url.removeprefix("http://")
    urls = {"twilio": f"http://ops:s3cret-pass@{authority}/tw"}
    sandbox: Sandbox = create_sandbox_app(config_for(hook, callback_urls=urls)).state.sandbox
    with caplog.at_level(logging.INFO, logger="app.sandbox.callbacks"):
        await sandbox.lifecycle.step()
    [delivery] = hook.to("/tw")
    assert (
        delivery.headers["authorization"]
        == "Basic " + base64.b64encode(b"ops:s3cret-pass").decode()
    )
    assert f"{hook.url}/tw" in caplog.text
    assert "s3cret-pass" not in caplog.text and "ops:" not in caplog.text
    # Signed over the URL the receiver sees (the credentials are not part of it).
    signature = twilio_check(
        sandbox.accounts("twilio")[0].signing_key, delivery.url, form_of(delivery)
    )
    assert delivery.headers["x-twilio-signature"] == signature


@pytest.mark.anyio
async def test_an_unreachable_url_is_retried_then_given_up_without_breaking_the_sandbox(
    hook: Receiver,
) -> None:
    with receiver() as gone:
        dead = gone.url
    app = create_sandbox_app(config_for(hook, callback_urls={"bird": f"{dead}/hook"}))
    sandbox: Sandbox = app.state.sandbox
    changed = await sandbox.lifecycle.step()
    log = sandbox.callbacks
    assert [(s.attempt, s.status_code, s.error) for s in log] == [
        (1, None, "ConnectError"),
        (2, None, "ConnectError"),
        (3, None, "ConnectError"),
    ]
    bird = next(r for r in changed if r.provider == "bird")
    assert sandbox.dataset.get("bird", bird.id) == bird  # the change stands


# --- configuration ---------------------------------------------------------------------------


def test_callback_urls_name_a_provider_or_any_account() -> None:
    other = SandboxConfig().accounts("twilio")[1].account
    urls = {"bird": "http://127.0.0.1:9/bird", other: "https://hooks.example/tw"}
    sandbox: Sandbox = create_sandbox_app(SandboxConfig(callback_urls=urls)).state.sandbox
    assert sandbox.callback_url("bird", sandbox.account("bird")) == urls["bird"]
    assert sandbox.callback_url("twilio", other) == urls[other]
    assert sandbox.callback_url("twilio", sandbox.account("twilio")) is None
    assert sandbox.public_url == DEFAULT_PUBLIC_URL
    with pytest.raises(ValueError, match="names no provider or account"):
        create_sandbox_app(SandboxConfig(callback_urls={"twillio": "http://127.0.0.1:9/"}))
    with pytest.raises(ValueError, match="must be http"):
        SandboxConfig(callback_urls={"twilio": "ftp://127.0.0.1/"})
    with pytest.raises(ValueError, match="lifecycle_interval"):
        SandboxConfig(lifecycle_interval=-1)


def test_signing_keys_stay_out_of_reprs() -> None:
    config = SandboxConfig()
    for provider in ("twilio", "signalwire", "bird"):
        for account in config.accounts(provider):
            assert account.signing_key and account.signing_key not in repr(account)
    assert config.signalwire_signing_key not in repr(config)
    assert config.bird_signing_key not in repr(config)
