"""Media redirects are followed by hand: allowed hosts, a few hops, credentials never elsewhere.

The links are minted against the sandbox; the media request then meets an upstream played
by ``httpx.MockTransport`` (a Twilio CDN hop, loops, bad locations).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from app.models import Provider
from app.sandbox import Sandbox
from app.settings import Settings
from tests.media.support import mint
from tests.providers.network import Network
from tests.support import gateway_client

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]
AUDIO = b"\xff\xf3" + bytes(range(256)) * 4


async def fetch_through(
    gateway: httpx.AsyncClient,
    settings: Settings,
    sandbox: Sandbox,
    handler: Handler,
    provider: Provider = Provider.TWILIO,
    dns: dict[str, list[str]] | None = None,
) -> tuple[httpx.Response, list[httpx.Request]]:
    url = await mint(gateway, provider, sandbox.sample_ids()[provider.value])
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    network = Network(httpx.MockTransport(record), dns=dns)  # its DNS: never a real one
    async with gateway_client(settings, network) as client:
        response = await client.get(url, headers={"Range": "bytes=0-9"})
    return response, seen


class Wire(httpx.AsyncByteStream):
    """A body that arrives like one from the network (MockTransport reads plain bytes eagerly)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


def audio(status: int = 200, body: bytes = AUDIO, **headers: str) -> httpx.Response:
    headers = {"content-length": str(len(body)), **headers}
    return httpx.Response(status, stream=Wire(body), headers=headers)


def redirect(location: str, status: int = 302) -> httpx.Response:
    return httpx.Response(status, headers={"location": location})


async def test_a_cdn_hop_gets_no_credentials(
    gateway: httpx.AsyncClient, settings: Settings, sandbox: Sandbox
) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.host == "media.twiliocdn.com":
            return audio(206, AUDIO[:10], **{"content-range": f"bytes 0-9/{len(AUDIO)}"})
        return redirect("https://media.twiliocdn.com/media/abc.mp3?sig=1")

    dns = {"media.twiliocdn.com": ["151.101.2.133"]}  # a public address (never connected to)
    response, seen = await fetch_through(gateway, settings, sandbox, upstream, dns=dns)
    assert response.status_code == 206 and response.content == AUDIO[:10]
    assert [r.url.host for r in seen] == ["sandbox.test", "media.twiliocdn.com"]
    assert seen[0].headers["authorization"].startswith("Basic ")
    assert "authorization" not in seen[1].headers
    assert seen[1].headers["range"] == "bytes=0-9"


async def test_a_same_origin_hop_keeps_twilio_credentials(
    gateway: httpx.AsyncClient, settings: Settings, sandbox: Sandbox
) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/moved.mp3":
            return audio()
        return redirect("/moved.mp3", 307)

    response, seen = await fetch_through(gateway, settings, sandbox, upstream)
    assert response.status_code == 206 and response.content == AUDIO[:10]  # sliced by the gateway
    assert all(r.headers["authorization"].startswith("Basic ") for r in seen)


async def test_bird_hops_never_carry_the_access_key(
    gateway: httpx.AsyncClient, settings: Settings, sandbox: Sandbox
) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/_s3/"):
            return audio()
        return redirect("/_s3/bucket/object.mp3?X-Amz-Signature=x", 307)

    response, seen = await fetch_through(gateway, settings, sandbox, upstream, Provider.BIRD)
    assert response.status_code == 206
    assert seen[0].headers["authorization"].startswith("AccessKey ")
    assert "authorization" not in seen[1].headers, "same host, but S3 takes no second auth"


@pytest.mark.parametrize(
    "handler",
    [
        lambda request: redirect("ftp://files.example.net/a.mp3"),
        lambda request: redirect("file:///etc/passwd"),
        lambda request: httpx.Response(302),
        lambda request: redirect(str(request.url)),  # a loop
    ],
    ids=["ftp", "file", "no-location", "loop"],
)
async def test_bad_redirects_are_502(
    gateway: httpx.AsyncClient, settings: Settings, sandbox: Sandbox, handler: Handler
) -> None:
    response, seen = await fetch_through(gateway, settings, sandbox, handler)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "PROVIDER_BAD_RESPONSE"
    assert len(seen) <= 4, "the first request and at most three hops"
