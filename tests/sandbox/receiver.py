"""A webhook receiver on a real socket for the sandbox's callbacks: it records every request as
it arrived (raw body, headers, the URL it was called at) and answers with scripted statuses."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import serve


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it; `headers` has lower-case names."""

    method: str
    url: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """The receiver's base URL, what it received (in order), and what it answers next.

    `answers` is consumed front first; once empty, every request gets 204. `arrived` is set
    by each request; `wait_until` waits (in a thread) for what has arrived to satisfy a test.
    """

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_until(self, test: Callable[[list[Received]], bool], timeout: float) -> bool:
        """Block until `test(received)` holds (True), or `timeout` seconds pass (False)."""
        with self.changed:
            return self.changed.wait_for(lambda: test(self.received), timeout)

    def to(self, path: str) -> list[Received]:
        """What arrived at one path."""
        return [each for each in self.received if each.path == path]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers.items())
        with self.changed:
            self.received.append(
                Received(request.method, str(request.url), request.url.path, headers, body)
            )
            self.arrived.set()
            self.changed.notify_all()
        return Response(status_code=self.answers.pop(0) if self.answers else 204)


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    """A `Receiver` served on 127.0.0.1 (any path, POST)."""
    state = Receiver()
    app = Starlette(routes=[Route("/{path:path}", state.handle, methods=["POST"])])
    with serve(app) as url:
        state.url = url
        yield state
