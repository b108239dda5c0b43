"""The media proxy over real sockets: the gateway and the sandbox each under uvicorn.

Bytes, ranges, HEAD, token refusals, key rotation, Bird's redirect hop and a client that
hangs up, all as a browser or a download tool would see them.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import httpx
import pytest

from app.main import create_app
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from app.upstream.aiohttp_transport import AiohttpTransport
from tests.media.support import SERVED, claims, flipped, mint_sync, resigned, token_of
from tests.servers import serve
from tests.support import sandbox_env, secrets_of

CONFIG = SandboxConfig()
RANGES = ["bytes=0-99", "bytes=1000-1999", "bytes=-500", "bytes=4096-"]
OLD_KEY = "old-signing-key-0123456789abcdef"
NEW_KEY = "new-signing-key-0123456789abcdef"


@dataclass
class Live:
    sandbox: Sandbox
    sandbox_url: str
    gateway_url: str

    def ready(self, provider: Provider) -> str:
        return self.sandbox.sample_ids()[provider.value]

    def env(self, **extra: str) -> dict[str, str]:
        return sandbox_env(CONFIG, self.sandbox_url) | extra


@pytest.fixture(scope="module")
def started() -> Iterator[Live]:
    sandbox_app = create_sandbox_app(CONFIG)
    with serve(sandbox_app) as sandbox_url:
        settings = Settings.from_env(sandbox_env(CONFIG, sandbox_url))
        with serve(create_app(settings)) as gateway_url:
            yield Live(sandbox_app.state.sandbox, sandbox_url, gateway_url)


@pytest.fixture
def live(started: Live) -> Iterator[Live]:
    started.sandbox.requests.clear()
    yield started
    started.sandbox.config = CONFIG
    started.sandbox.faults.clear()


def from_sandbox(live: Live, provider: Provider, rid: str, fmt: str) -> bytes:
    """The media as the provider serves it, fetched the way each provider documents."""
    ext = fmt.lower()
    with httpx.Client(base_url=live.sandbox_url) as client:
        if provider is Provider.TWILIO:
            path = f"/2010-04-01/Accounts/{CONFIG.twilio_account_sid}/Recordings/{rid}.{ext}"
            auth = (CONFIG.twilio_account_sid, CONFIG.twilio_auth_token)
            return client.get(path, auth=auth).raise_for_status().content
        if provider is Provider.SIGNALWIRE:
            path = (
                f"/api/laml/2010-04-01/Accounts/{CONFIG.signalwire_project_id}"
                f"/Recordings/{rid}.{ext}"
            )
            return client.get(path).raise_for_status().content
        path = f"/workspaces/{CONFIG.bird_workspace_id}/recordings/{rid}.mp3"
        hop = client.get(path, headers={"Authorization": f"AccessKey {CONFIG.bird_access_key}"})
        assert hop.status_code == 307
        return client.get(hop.headers["location"]).raise_for_status().content


@pytest.mark.parametrize(("provider", "fmt"), SERVED, ids=lambda v: getattr(v, "value", v))
def test_bytes_through_the_proxy_equal_the_providers(
    live: Live, provider: Provider, fmt: str
) -> None:
    rid = live.ready(provider)
    expected = from_sandbox(live, provider, rid, fmt)
    with httpx.Client(base_url=live.gateway_url) as client:
        response = client.get(mint_sync(client, provider, rid, fmt=fmt))
    assert response.status_code == 200
    assert response.content == expected
    headers = response.headers
    assert headers["content-type"] == {"MP3": "audio/mpeg", "WAV": "audio/wav"}[fmt]
    assert headers["content-length"] == str(len(expected))
    assert headers["accept-ranges"] == "bytes"
    directive, _, max_age = headers["cache-control"].partition(", max-age=")
    assert directive == "private" and 0 < int(max_age) <= 900  # the link's default lifetime
    filename = f"{provider.value}-{rid}.{fmt.lower()}"
    assert headers["content-disposition"] == f'inline; filename="{filename}"'


@pytest.mark.parametrize("honor_range", [True, False], ids=["upstream-ranges", "gateway-slices"])
@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
def test_ranges_are_exact_slices(live: Live, provider: Provider, honor_range: bool) -> None:
    live.sandbox.config = replace(CONFIG, honor_range=honor_range)
    rid = live.ready(provider)
    whole = from_sandbox(live, provider, rid, "MP3")
    size = len(whole)
    with httpx.Client(base_url=live.gateway_url) as client:
        url = mint_sync(client, provider, rid)
        for spec in RANGES:
            response = client.get(url, headers={"Range": spec})
            first, _, last = spec.removeprefix("bytes=").partition("-")
            start = size - int(last) if first == "" else int(first)
            stop = size if first == "" or last == "" else int(last) + 1
            assert response.status_code == 206, spec
            assert response.content == whole[start:stop], spec
            assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}"
            assert response.headers["content-length"] == str(stop - start)
        ignored = client.get(url, headers={"Range": "bytes=0-1,5-9"})  # multi-range: whole body
        assert ignored.status_code == 200 and ignored.content == whole


@contextmanager
def lengthened(live: Live, provider: Provider, seconds: int) -> Iterator[str]:
    """The provider's ready recording, ``seconds`` long for the duration; yields its id."""
    rid = live.ready(provider)
    record = live.sandbox.dataset.get(provider.value, rid)
    assert record is not None
    live.sandbox.dataset.put(replace(record, duration=seconds))
    try:
        yield rid
    finally:
        live.sandbox.dataset.put(record)


#: 400 s: a WAV of 6.4 or 12.8 MB, an MP3 of 1.6 MB: many of aiohttp's read buffers each.
LONG = 400
LONG_RANGES = ["bytes=100-", "bytes=-1500000", "bytes=1048000-2100000", "bytes=0-99"]


@pytest.mark.parametrize(("provider", "fmt"), SERVED, ids=lambda v: getattr(v, "value", v))
def test_a_long_recording_through_the_proxy_equals_the_providers(
    live: Live, provider: Provider, fmt: str
) -> None:
    with lengthened(live, provider, LONG) as rid:
        expected = from_sandbox(live, provider, rid, fmt)
        with httpx.Client(base_url=live.gateway_url) as client:
            response = client.get(mint_sync(client, provider, rid, fmt=fmt))
    assert len(expected) > 1_500_000
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(expected))
    assert response.content == expected


@pytest.mark.parametrize("honor_range", [True, False], ids=["upstream-ranges", "gateway-slices"])
@pytest.mark.parametrize(
    ("provider", "fmt"),
    [(Provider.TWILIO, "WAV"), (Provider.SIGNALWIRE, "WAV"), (Provider.BIRD, "MP3")],
    ids=lambda v: getattr(v, "value", v),
)
def test_ranges_of_a_long_recording_are_exact_slices(
    live: Live, provider: Provider, fmt: str, honor_range: bool
) -> None:
    live.sandbox.config = replace(CONFIG, honor_range=honor_range)
    with lengthened(live, provider, LONG) as rid:
        whole = from_sandbox(live, provider, rid, fmt)
        size = len(whole)
        with httpx.Client(base_url=live.gateway_url) as client:
            url = mint_sync(client, provider, rid, fmt=fmt)
            for spec in LONG_RANGES:
                response = client.get(url, headers={"Range": spec})
                first, _, last = spec.removeprefix("bytes=").partition("-")
                start = size - int(last) if first == "" else int(first)
                stop = size if first == "" or last == "" else min(int(last) + 1, size)
                assert response.status_code == 206, spec
                assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}"
                assert response.content == whole[start:stop], spec


@pytest.mark.parametrize("honor_range", [True, False], ids=["upstream-ranges", "gateway-slices"])
def test_head(live: Live, honor_range: bool) -> None:
    live.sandbox.config = replace(CONFIG, honor_range=honor_range)
    rid = live.ready(Provider.BIRD)
    size = len(from_sandbox(live, Provider.BIRD, rid, "MP3"))
    with httpx.Client(base_url=live.gateway_url) as client:
        url = mint_sync(client, Provider.BIRD, rid)
        whole = client.head(url)
        part = client.head(url, headers={"Range": "bytes=-500"})
        refused = client.head(flipped(url, 30))
    assert (whole.status_code, whole.content) == (200, b"")
    assert whole.headers["content-length"] == str(size)
    assert whole.headers["content-type"] == "audio/mpeg"
    assert whole.headers["accept-ranges"] == "bytes"
    assert (part.status_code, part.content) == (206, b"")
    assert part.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"
    assert part.headers["content-length"] == "500"
    assert (refused.status_code, refused.content) == (403, b"")


def test_flipped_bits_are_403_and_expired_links_410(live: Live) -> None:
    with httpx.Client(base_url=live.gateway_url) as client:
        url = mint_sync(client, Provider.TWILIO, live.ready(Provider.TWILIO))
        live.sandbox.requests.clear()
        for position in (5, len(token_of(url)) // 2, len(token_of(url)) - 10):
            response = client.get(flipped(url, position))
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "MEDIA_LINK_INVALID"
        expired = client.get(resigned(url, exp=int(time.time()) - 1))
        assert expired.status_code == 410
        assert expired.json()["error"]["code"] == "MEDIA_LINK_EXPIRED"
        assert live.sandbox.requests == [], "no upstream request for a refused link"
        assert client.get(url).status_code == 200


def test_key_rotation_keeps_links_working(live: Live) -> None:
    keys = {"old": OLD_KEY, "rotated": f"{NEW_KEY},{OLD_KEY}", "new": NEW_KEY}
    apps = {
        name: create_app(Settings.from_env(live.env(GATEWAY_SIGNING_KEYS=value)))
        for name, value in keys.items()
    }
    rid = live.ready(Provider.SIGNALWIRE)
    with serve(apps["old"]) as old, serve(apps["rotated"]) as rotated, serve(apps["new"]) as new:
        with httpx.Client() as client:
            client.base_url = httpx.URL(old)
            old_link = token_of(mint_sync(client, Provider.SIGNALWIRE, rid))
            client.base_url = httpx.URL(rotated)
            rotated_link = token_of(mint_sync(client, Provider.SIGNALWIRE, rid))
            assert client.get(f"{rotated}/media/{old_link}").status_code == 200
            assert client.get(f"{new}/media/{old_link}").status_code == 403
            assert client.get(f"{new}/media/{rotated_link}").status_code == 200
            assert client.get(f"{old}/media/{rotated_link}").status_code == 403
    assert claims(rotated_link, NEW_KEY)["r"] == rid, "the first key signs"


def test_birds_redirect_hop_carries_no_authorization(live: Live) -> None:
    rid = live.ready(Provider.BIRD)
    expected = from_sandbox(live, Provider.BIRD, rid, "MP3")
    live.sandbox.requests.clear()
    with httpx.Client(base_url=live.gateway_url) as client:
        response = client.get(mint_sync(client, Provider.BIRD, rid))
    assert response.content == expected
    api = [r for r in live.sandbox.requests_to("bird") if r.path.endswith(".mp3")]
    s3 = live.sandbox.requests_to("s3")
    assert len(api) == 1 and len(s3) == 1
    assert api[0].headers["authorization"] == f"AccessKey {CONFIG.bird_access_key}"
    assert "authorization" not in s3[0].headers


def test_birds_redirect_to_another_http_host_is_refused(live: Live) -> None:
    """Only https, or the base URL's own scheme and host: not another name over http."""
    other = live.sandbox_url.replace("127.0.0.1", "localhost")
    live.sandbox.config = replace(CONFIG, s3_base_url=other)
    rid = live.ready(Provider.BIRD)
    live.sandbox.requests.clear()
    with httpx.Client(base_url=live.gateway_url) as client:
        response = client.get(mint_sync(client, Provider.BIRD, rid))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "PROVIDER_BAD_RESPONSE"
    assert live.sandbox.requests_to("s3") == [], "the refused hop is never requested"


def test_nothing_secret_in_responses_or_logs(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with httpx.Client(base_url=live.gateway_url) as client:
        for provider in Provider:
            url = mint_sync(client, provider, live.ready(provider))
            seen.append(url)
            for fault in (None, 401, 500):
                if fault:
                    live.sandbox.faults.inject(provider.value, fault)
                response = client.get(url, headers={"Range": "bytes=0-99"})
                seen.append(str(response.headers) + response.text[:500])
    basic = base64.b64encode(f"{CONFIG.twilio_account_sid}:{CONFIG.twilio_auth_token}".encode())
    secrets = [*secrets_of(CONFIG), basic.decode()]
    text = "\n".join(seen) + caplog.text
    assert "media download failed" in caplog.text, "the operator is told about upstream failures"
    for secret in secrets:
        assert secret not in text


class Watched(httpx.AsyncByteStream):
    """An upstream body that reports how much was read and whether it was closed."""

    def __init__(self, inner: httpx.AsyncByteStream, watch: Watch) -> None:
        self.inner = inner
        self.watch = watch

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.watch.delivered += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.watch.closed.set()


class Watch(httpx.AsyncBaseTransport):
    """The gateway's own network transport, with the media bodies watched."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()
        self.closed = threading.Event()
        self.delivered = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith(".wav"):
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = Watched(response.stream, self)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_client_hanging_up_closes_the_upstream_stream() -> None:
    sandbox_app = create_sandbox_app(CONFIG)
    sandbox: Sandbox = sandbox_app.state.sandbox
    rid = sandbox.sample_ids()["signalwire"]
    record = sandbox.dataset.get("signalwire", rid)
    assert record is not None
    # 1.4 GB of WAV (made as it is read): far more than the loopback socket buffers can
    # take in before the client hangs up, however fast the gateway relays.
    hours = 24
    sandbox.dataset.put(replace(record, duration=hours * 3600, channels=1))
    size = 44 + hours * 3600 * 16000
    watch = Watch()
    with serve(sandbox_app) as sandbox_url:
        settings = Settings.from_env(sandbox_env(CONFIG, sandbox_url))
        with serve(create_app(settings, transport=watch)) as gateway_url:
            with httpx.Client(base_url=gateway_url) as client:
                url = mint_sync(client, Provider.SIGNALWIRE, rid, fmt="WAV")
                with client.stream("GET", url) as response:
                    assert response.headers["content-length"] == str(size)
                    assert next(response.iter_raw())
            # Leaving the stream unread closes the connection; the gateway must let go too.
            assert watch.closed.wait(timeout=30), "the upstream stream was never closed"
    # Soon, not after the whole file: at most what the socket buffers and read-ahead hold.
    assert 0 < watch.delivered < 64 * 2**20
