"""Media metrics over real sockets: bytes relayed by provider, and active streams back to
where they were however a download ends (complete, client gone, provider cut mid-body).

Each gateway runs with the media test's ``Watch`` transport, whose ``closed`` event is set
when the gateway closes the upstream body: the proxy lowers the gauge before it does that,
so waiting on the event is waiting for the gauge (no sleeps).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp

from app.main import create_app
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.media.support import mint_sync
from tests.media.test_streaming import Watch
from tests.metrics.support import Scrape, scrape_sync
from tests.servers import serve
from tests.support import sandbox_env
from tests.test_logs import CutWav

CONFIG = SandboxConfig()
#: LEFTOVERS: the gauge is the process's, and a stream an earlier test left behind (a client that
#: stopped reading under an in-process server) may end at any moment of a later test. So a test
#: asserts that its own stream took the gauge back down (to where it was, or lower if a
#: leftover ended meanwhile), which still fails if a stream's end is not counted.
ACTIVE = "gateway_media_active_streams"
BYTES = "gateway_media_bytes_relayed_total"


@contextlib.contextmanager
def gateway_over(sandbox_app: ASGIApp) -> Iterator[tuple[httpx.Client, Watch]]:
    """A client of the gateway under uvicorn, over the sandbox under uvicorn, and the
    gateway's watched transport."""
    watch = Watch()
    with serve(sandbox_app) as sandbox_url:
        settings = Settings.from_env(sandbox_env(CONFIG, sandbox_url))
        with serve(create_app(settings, transport=watch)) as gateway_url:
            with httpx.Client(base_url=gateway_url) as client:
                yield client, watch


def relayed(before: Scrape, after: Scrape) -> float:
    return after.value(BYTES, provider="signalwire") - before.value(BYTES, provider="signalwire")


def sandbox_with_ready(duration: int | None = None) -> tuple[Starlette, str]:
    """A sandbox and its ready SignalWire recording (lengthened to ``duration`` seconds)."""
    app = create_sandbox_app(CONFIG)
    sandbox: Sandbox = app.state.sandbox
    rid = sandbox.sample_ids()["signalwire"]
    if duration is not None:
        record = sandbox.dataset.get("signalwire", rid)
        assert record is not None
        sandbox.dataset.put(replace(record, duration=duration, channels=1))
    return app, rid


def test_a_complete_download_counts_its_bytes_and_ends_its_stream() -> None:
    app, rid = sandbox_with_ready()
    with gateway_over(app) as (client, _):
        link = mint_sync(client, Provider.SIGNALWIRE, rid, fmt="WAV")
        before = scrape_sync(client)
        response = client.get(link)
        assert response.status_code == 200 and response.content
        # The stream is counted out when its body ends, before the client has all of it.
        after = scrape_sync(client)
    assert relayed(before, after) == len(response.content)
    assert after.value(ACTIVE) <= before.value(ACTIVE)  # see LEFTOVERS


def test_a_client_gone_mid_stream_ends_its_stream() -> None:
    # 1.4 GB of WAV (made as it is read): the stream is still going when the client looks.
    app, rid = sandbox_with_ready(duration=24 * 3600)
    with gateway_over(app) as (client, watch):
        link = mint_sync(client, Provider.SIGNALWIRE, rid, fmt="WAV")
        before = scrape_sync(client)
        with client.stream("GET", link) as response:
            assert next(response.iter_raw())
            during = scrape_sync(client)  # another connection of the pool
        # Leaving the stream unread closed its connection: the client is gone.
        assert watch.closed.wait(timeout=30), "the upstream stream was never closed"
        after = scrape_sync(client)
    assert during.value(ACTIVE) >= 1
    assert after.value(ACTIVE) <= before.value(ACTIVE)  # see LEFTOVERS
    assert 0 < relayed(before, after) <= watch.delivered


def test_a_provider_cut_mid_stream_ends_its_stream_and_counts_what_was_sent() -> None:
    app, rid = sandbox_with_ready()
    with gateway_over(CutWav(app)) as (client, watch):
        link = mint_sync(client, Provider.SIGNALWIRE, rid, fmt="WAV")
        before = scrape_sync(client)
        received = 0
        with client.stream("GET", link) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    received += len(chunk)
        assert watch.closed.wait(timeout=30)
        after = scrape_sync(client)
    assert 0 < received < int(response.headers["content-length"])
    assert relayed(before, after) == received
    assert after.value(ACTIVE) <= before.value(ACTIVE)  # see LEFTOVERS
