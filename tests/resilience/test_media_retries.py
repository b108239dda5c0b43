"""A media download is retried while it opens (before its first byte reached the client), and
never after: a provider breaking off mid-body ends the download, with one upstream request."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from app.models import Provider
from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from tests.media.support import mint
from tests.servers import serve
from tests.support import gateway_client, sandbox_env
from tests.test_logs import CutWav
from tests.upstream.support import transport

pytestmark = pytest.mark.anyio


def wav_requests(sandbox_app: object) -> int:
    sandbox = sandbox_app.state.sandbox  # type: ignore[attr-defined]
    return sum(1 for r in sandbox.requests_to("signalwire") if r.url.endswith(".wav"))


async def test_a_media_download_is_retried_while_it_opens() -> None:
    sandbox_app = create_sandbox_app(DEMO)
    sandbox = sandbox_app.state.sandbox
    rid = sandbox.sample_ids()["signalwire"]
    with serve(sandbox_app) as url:
        settings = Settings.from_env(sandbox_env(DEMO, url))
        async with gateway_client(settings, transport("aiohttp")) as client:
            link = await mint(client, Provider.SIGNALWIRE, rid, fmt="WAV")
            sandbox.faults.inject("signalwire", 503)
            response = await client.get(link)
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["content-length"]) > 0
    assert wav_requests(sandbox_app) == 2


async def test_a_media_body_cut_midway_is_never_retried() -> None:
    sandbox_app = create_sandbox_app(DEMO)
    rid = sandbox_app.state.sandbox.sample_ids()["signalwire"]
    with serve(CutWav(sandbox_app)) as url:
        gateway = create_app(Settings.from_env(sandbox_env(DEMO, url)))
        with serve(gateway) as gateway_url:
            async with httpx.AsyncClient(base_url=gateway_url) as client:
                link = await mint(client, Provider.SIGNALWIRE, rid, fmt="WAV")
                async with client.stream("GET", link) as response:
                    assert response.status_code == 200
                    size = int(response.headers["content-length"])
                    received = 0
                    with pytest.raises(httpx.RemoteProtocolError):  # a truncated transfer
                        async for chunk in response.aiter_raw():
                            received += len(chunk)
    assert 0 < received < size
    assert wav_requests(sandbox_app) == 1
