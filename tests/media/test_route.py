"""/media/{token}: refusals before any upstream request, and upstream failures, in-process.

Bodies here are small; streaming, Range and HEAD over real sockets are in test_media_streaming.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from starlette.applications import Starlette

from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from app.signing import Signer
from tests.media.support import flipped, mint, resigned, token_of
from tests.support import SIGNING_KEY, gateway_client, sandbox_env, secrets_of

pytestmark = pytest.mark.anyio


def ready_id(sandbox: Sandbox, provider: Provider) -> str:
    return sandbox.sample_ids()[provider.value]


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert len(response.content) < 300
    code: str = body["error"]["code"]
    return code


async def test_a_link_serves_the_audio(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    url = await mint(gateway, Provider.TWILIO, ready_id(sandbox, Provider.TWILIO))
    response = await gateway.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content[:1] == b"\xff"


async def test_bad_tokens_are_403_without_an_upstream_request(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    url = await mint(gateway, Provider.TWILIO, ready_id(sandbox, Provider.TWILIO))
    token = token_of(url)
    sandbox.requests.clear()
    cursor = Signer([SIGNING_KEY]).sign({"p": "twilio"}, purpose="cursor/default")
    bad = [
        flipped(url, len(token) // 3),  # in the payload
        flipped(url, len(token) - 20),  # in the signature
        url[:-5],
        "http://gateway.test/media/not-a-token",
        "http://gateway.test/media/" + cursor,  # signed, but for another purpose
        resigned(url, sign_with="some-other-key-0123456789"),
        resigned(url, exp="soon"),
    ]
    for link in bad:
        for method in ("GET", "HEAD"):
            response = await gateway.request(method, link)
            assert response.status_code == 403, link
            if method == "GET":
                assert error_of(response) == "MEDIA_LINK_INVALID"
    assert sandbox.requests == []


async def test_expired_links_are_410_without_an_upstream_request(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    url = await mint(gateway, Provider.SIGNALWIRE, ready_id(sandbox, Provider.SIGNALWIRE))
    sandbox.requests.clear()
    response = await gateway.get(resigned(url, exp=int(time.time()) - 1))
    assert response.status_code == 410
    assert error_of(response) == "MEDIA_LINK_EXPIRED"
    assert sandbox.requests == []


@pytest.mark.parametrize(
    "change",
    [
        {"TWILIO_ACCOUNT_SID": None},  # Twilio no longer configured
        {"TWILIO_ACCOUNT_SID": "AC" + "e" * 32},  # another account now
        {"TWILIO_BASE_URL": "http://other-sandbox.test"},  # another endpoint
    ],
    ids=["unconfigured", "other-account", "other-endpoint"],
)
async def test_links_for_an_account_no_longer_served_are_403(
    gateway: httpx.AsyncClient,
    sandbox: Sandbox,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    change: dict[str, str | None],
) -> None:
    url = await mint(gateway, Provider.TWILIO, ready_id(sandbox, Provider.TWILIO))
    env = sandbox_env(sandbox_config)
    for name, value in change.items():
        if value is None:
            env = {k: v for k, v in env.items() if not k.startswith("TWILIO")}
        else:
            env[name] = value
    sandbox.requests.clear()
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as other:
        response = await other.get(url)
    assert response.status_code == 403
    assert error_of(response) == "MEDIA_LINK_UNKNOWN"
    assert sandbox.requests == []


async def test_a_recording_deleted_since_is_404(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    for provider in (Provider.SIGNALWIRE, Provider.BIRD):
        rid = ready_id(sandbox, provider)
        url = await mint(gateway, provider, rid)
        sandbox.dataset.delete(provider.value, rid)
        response = await gateway.get(url)
        assert response.status_code == 404
        assert error_of(response) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("provider", "fault", "status"),
    [
        (Provider.TWILIO, "twilio", 500),
        (Provider.TWILIO, "twilio", 401),
        (Provider.SIGNALWIRE, "signalwire", 503),
        (Provider.BIRD, "bird", 429),
        (Provider.BIRD, "s3", 500),
        (Provider.BIRD, "s3", 403),
    ],
)
async def test_upstream_failures_are_502(
    gateway: httpx.AsyncClient,
    sandbox: Sandbox,
    sandbox_config: SandboxConfig,
    provider: Provider,
    fault: str,
    status: int,
) -> None:
    url = await mint(gateway, provider, ready_id(sandbox, provider))
    sandbox.faults.inject(fault, status, times=3)  # 503 and 429 are retried: every attempt
    response = await gateway.get(url)
    assert response.status_code == 502
    assert error_of(response).startswith("PROVIDER_")
    for secret in secrets_of(sandbox_config):
        assert secret not in response.text


async def test_transport_failure_is_502(
    gateway: httpx.AsyncClient, settings: Settings, sandbox: Sandbox
) -> None:
    url = await mint(gateway, Provider.SIGNALWIRE, ready_id(sandbox, Provider.SIGNALWIRE))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with gateway_client(settings, httpx.MockTransport(refuse)) as unreachable:
        response = await unreachable.get(url)
    assert response.status_code == 502
    assert error_of(response) == "PROVIDER_UNAVAILABLE"


async def test_unsatisfiable_range_is_416_with_the_size(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    url = await mint(gateway, Provider.SIGNALWIRE, ready_id(sandbox, Provider.SIGNALWIRE))
    size = len((await gateway.get(url)).content)
    for honor in (True, False):  # the sandbox's 416 relayed, or the gateway's own
        sandbox.config = SandboxConfig(honor_range=honor)
        response = await gateway.get(url, headers={"Range": f"bytes={size}-"})
        assert response.status_code == 416
        assert response.headers["content-range"] == f"bytes */{size}"
        assert error_of(response) == "RANGE_NOT_SATISFIABLE"


async def test_errors_never_show_credentials(
    gateway: httpx.AsyncClient, sandbox: Sandbox, sandbox_config: SandboxConfig
) -> None:
    texts = []
    for provider in Provider:
        url = await mint(gateway, provider, ready_id(sandbox, provider))
        for status in (401, 403, 404, 500):
            sandbox.faults.inject(provider.value, status)
            response = await gateway.get(url)
            texts.append(json.dumps(dict(response.headers)) + response.text)
    for secret in secrets_of(sandbox_config):
        assert all(secret not in text for text in texts)
