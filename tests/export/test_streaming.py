"""Rows stream as the providers answer, with at most one page read ahead per provider.

The sandbox is held from each provider's third request on (``Hold``) until the test lets it
go: the first bytes must reach the client while pages are still held (the walk has not
ended), and no provider may be asked for a fourth page before its third has answered.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from app.export.rows import COLUMNS
from app.main import create_app
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.middleware import SeenRequest
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
        assert max(hold.seen.values()) <= 3  # the page in use, one ahead, one held
        hold.released.set()
        body = first + b"".join(chunks)
    rows = csv_rows(body.decode())
    assert [(row["provider"], row["id"]) for row in rows] == expected(sandbox)
