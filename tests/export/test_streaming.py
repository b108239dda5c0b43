"""Rows stream as the providers answer, and reading ahead is bounded.

- The sandbox is held from each provider's third request on (``Hold``) until the test lets it
  go: the first bytes must reach the client while pages are still held (the walk has not
  ended).
- A walk whose consumer stops reading asks each provider for exactly ``AHEAD + 2`` pages (the
  one in use, ``AHEAD`` ready, one in flight) and then no more, however long it waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from app.cache import RecordingCache
from app.export.rows import COLUMNS
from app.export.stream import AHEAD
from app.listing.cursors import START
from app.listing.merge import Lane, LaneOptions, ListFilter, runs
from app.main import create_app
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.middleware import SeenRequest
from app.tenants import Tenants
from app.upstream.client import Upstream
from tests.export.support import csv_rows, settings_for
from tests.listing.support import expected
from tests.servers import serve


class Hold:
    """ASGI middleware before the sandbox: each provider's requests after the first ``free``
    wait until ``release`` (in a thread: the gateway's loop, which runs this, goes on)."""

    def __init__(self, app: Starlette, free: int) -> None:
        self.app = app
        self.free = free
        self.seen: Counter[str] = Counter()
        self.released = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = SeenRequest.from_scope(scope).provider if scope["type"] == "http" else None
        if provider is not None:
            self.seen[provider] += 1
            if self.seen[provider] > self.free:
                await asyncio.to_thread(self.released.wait, 60)
        await self.app(scope, receive, send)


def test_the_first_rows_arrive_while_pages_are_still_held() -> None:
    config = SandboxConfig(recordings_per_provider=60)  # 6 pages of 10 per provider
    sandbox_app = create_sandbox_app(config)
    sandbox: Sandbox = sandbox_app.state.sandbox
    hold = Hold(sandbox_app, free=2)
    app = create_app(settings_for(config), transport=httpx.ASGITransport(app=hold))
    with serve(app) as url, httpx.stream("GET", f"{url}/export/recordings.csv") as answer:
        chunks = answer.iter_raw()
        first = next(chunks)
        assert first.startswith(",".join(COLUMNS).encode())
        assert not hold.released.is_set()  # the walk is still waiting on held pages
        assert set(hold.seen) == {"twilio", "signalwire", "bird"}
        assert max(hold.seen.values()) <= 3  # a page is asked for once the one before answered
        hold.released.set()
        body = first + b"".join(chunks)
    rows = csv_rows(body.decode())
    assert [(row["provider"], row["id"]) for row in rows] == expected(sandbox)


@pytest.mark.anyio
async def test_reading_ahead_stops_at_its_bound() -> None:
    config = SandboxConfig(recordings_per_provider=200)  # 20 pages of 10 per provider
    sandbox_app = create_sandbox_app(config)
    sandbox: Sandbox = sandbox_app.state.sandbox
    settings = settings_for(config)
    upstream = Upstream(httpx.ASGITransport(app=sandbox_app), timeout=10)
    tenant = Tenants.build(settings, upstream, RecordingCache(None))["default"]
    adapters = [tenant.recordings.provider(name) for name in tenant.providers]
    options = LaneOptions(ahead=AHEAD)
    lanes = [Lane(adapter, START, ListFilter(), 10, options) for adapter in adapters]
    tasks = asyncio.all_tasks()
    walk = runs(lanes)
    try:
        run = await anext(walk)
        next(run)  # one recording taken; then nobody reads on

        def asked() -> Counter[str]:
            return Counter(seen.provider for seen in sandbox.requests if seen.provider)

        bound = {"twilio": AHEAD + 2, "signalwire": AHEAD + 2, "bird": AHEAD + 2}
        for _ in range(10_000):  # until the readers are full (no clock involved)
            if asked() == bound:
                break
            await asyncio.sleep(0)
        assert asked() == bound
        for _ in range(1_000):  # they stay there: nothing more is asked for
            await asyncio.sleep(0)
        assert asked() == bound
    finally:
        await walk.aclose()  # the readers are cancelled
        await upstream.aclose()
    for _ in range(100):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks  # no reader left behind
