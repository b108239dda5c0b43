"""The commands that make the sandbox push: ``sandbox --callback-url`` and ``serve --demo``.

- The demo's gateway is configured (``sandbox_env``) with the very keys its sandbox signs with,
  and the sandbox's callbacks go to the gateway's ``/webhooks/<provider>/default`` (at
  ``GATEWAY_PUBLIC_URL`` when set, the URL the gateway verifies signatures over).
- Run as an operator runs them (``python -m app``, real sockets), each command's callbacks reach
  a receiver, signed so that the keys the gateway holds verify them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest

from app.cli import Plan, _effective, callback_urls, demo_sandbox_config, main
from app.sandbox import DEMO
from app.settings import Settings
from tests.sandbox.receiver import Received, Receiver, receiver
from tests.test_cli import server

PROVIDERS = ("twilio", "signalwire", "bird")
#: Seconds to wait for a pushed callback (the machine may be busy).
PATIENCE = 60.0


def twilio_check(key: str, url: str, body: bytes) -> str:
    form = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
    data = url + "".join(name + value for name, value in sorted(form))
    return base64.b64encode(hmac.new(key.encode(), data.encode(), hashlib.sha1).digest()).decode()


def bird_check(key: str, timestamp: str, url: str, body: bytes) -> str:
    joined = timestamp.encode() + b"\n" + url.encode() + b"\n" + hashlib.sha256(body).digest()
    return base64.b64encode(hmac.new(key.encode(), joined, hashlib.sha256).digest()).decode()


def verifies(key: str, provider: str, delivery: Received) -> bool:
    """Whether `delivery` carries `provider`'s signature made with `key`."""
    headers = delivery.headers
    if provider == "bird":
        timestamp = headers["messagebird-request-timestamp"]
        expected = bird_check(key, timestamp, delivery.url, delivery.body)
        return headers["messagebird-signature"] == expected
    expected = twilio_check(key, delivery.url, delivery.body)
    ok = headers["x-twilio-signature"] == expected
    return ok and (provider == "twilio" or headers["x-signalwire-signature"] == expected)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


# --- the demo's wiring, through the functions the command uses --------------------------------


def test_the_demo_gateway_holds_the_keys_its_sandbox_signs_with() -> None:
    settings = Settings.from_env({})
    plan = Plan("127.0.0.1", 8123, demo=True, lifecycle_interval=10.0)
    gateway = _effective(settings, plan)
    sandbox = demo_sandbox_config(settings, plan)
    signing = {p: sandbox.accounts(p)[0].signing_key for p in PROVIDERS}
    assert gateway.twilio is not None and gateway.twilio.webhook_signing_key is not None
    assert gateway.signalwire is not None and gateway.signalwire.webhook_signing_key is not None
    assert gateway.bird is not None and gateway.bird.webhook_signing_key is not None
    assert str(gateway.twilio.webhook_signing_key) == signing["twilio"] == DEMO.twilio_auth_token
    assert str(gateway.signalwire.webhook_signing_key) == signing["signalwire"]
    assert str(gateway.bird.webhook_signing_key) == signing["bird"]
    assert signing["signalwire"] != DEMO.signalwire_api_token
    assert dict(sandbox.callback_urls) == {
        p: f"http://127.0.0.1:8123/webhooks/{p}/default" for p in PROVIDERS
    }
    assert sandbox.public_url == "http://127.0.0.1:8123/sandbox"
    assert sandbox.lifecycle_interval == 10.0


def test_behind_a_proxy_the_demo_calls_back_at_the_public_url() -> None:
    settings = Settings.from_env({"GATEWAY_PUBLIC_URL": "https://demo.example.com/rg"})
    sandbox = demo_sandbox_config(settings, Plan("0.0.0.0", 8000, demo=True))
    assert sandbox.callback_urls["bird"] == "https://demo.example.com/rg/webhooks/bird/default"


def test_callback_url_values_expand_in_order() -> None:
    urls = callback_urls([(None, "http://gw:8000/"), ("bird", "https://hooks.example/b")])
    assert urls == {
        "twilio": "http://gw:8000/webhooks/twilio/default",
        "signalwire": "http://gw:8000/webhooks/signalwire/default",
        "bird": "https://hooks.example/b",
    }


@pytest.mark.parametrize(
    "bad",
    [
        ["--callback-url", "ftp://127.0.0.1/x"],
        ["--callback-url", "twilio=127.0.0.1:9/x"],
        ["--callback-url", "=http://127.0.0.1:9/x"],
        ["--lifecycle-interval", "-1"],
        ["--lifecycle-interval", "nan"],
    ],
)
def test_bad_sandbox_options_are_refused_before_anything_starts(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["sandbox", *bad])
    assert stopped.value.code == 2
    assert "recording-gateway sandbox: error: argument" in capsys.readouterr().err


def test_a_callback_for_no_account_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--callback-url", "twillio=http://127.0.0.1:9/x"]) == 2
    assert "'twillio' names no provider or account" in capsys.readouterr().err


# --- the commands, run -----------------------------------------------------------------------


def test_sandbox_pushes_signed_callbacks_to_its_callback_url(hook: Receiver) -> None:
    args = ["sandbox", "--callback-url", f"twilio={hook.url}/tw", "--lifecycle-interval", "0.05"]
    with server(*args) as sandbox:
        arrived = hook.wait_until(lambda got: len(got) >= 1, PATIENCE)
    assert arrived, sandbox.output
    assert f"callbacks: twilio -> {hook.url}/tw" in sandbox.output
    first = hook.received[0]
    assert first.path == "/tw"
    assert verifies(DEMO.twilio_auth_token, "twilio", first)
    params = dict(parse_qsl(first.body.decode()))
    assert params["AccountSid"] == DEMO.twilio_account_sid
    assert params["RecordingUrl"].startswith(f"{sandbox.url}/2010-04-01/Accounts/")


def test_serve_demo_pushes_each_providers_callbacks_to_the_gateway(hook: Receiver) -> None:
    """With GATEWAY_PUBLIC_URL at the receiver, the demo's pushes land there, each signed with
    the key the demo gateway verifies with."""
    env = {"GATEWAY_PUBLIC_URL": hook.url}
    plan = Plan("127.0.0.1", 0, demo=True)
    gateway = _effective(Settings.from_env(env), plan)
    keys = {
        "twilio": gateway.twilio.webhook_signing_key if gateway.twilio else None,
        "signalwire": gateway.signalwire.webhook_signing_key if gateway.signalwire else None,
        "bird": gateway.bird.webhook_signing_key if gateway.bird else None,
    }

    def each_provider(got: list[Received]) -> bool:
        return {each.path for each in got} >= {f"/webhooks/{p}/default" for p in PROVIDERS}

    with server("serve", "--demo", "--lifecycle-interval", "0.05", env=env) as demo:
        arrived = hook.wait_until(each_provider, PATIENCE)
    assert arrived, demo.output
    assert "The demo's recordings change state every 0.05 s" in demo.output
    for provider in PROVIDERS:
        key = keys[provider]
        assert key is not None
        deliveries = hook.to(f"/webhooks/{provider}/default")
        assert deliveries and all(verifies(str(key), provider, d) for d in deliveries)
    bird = json.loads(hook.to("/webhooks/bird/default")[0].body)
    assert bird["payload"]["status"] == "accepted"
