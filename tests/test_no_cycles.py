"""A request leaves no garbage that only the cycle collector can free.

Garbage in reference cycles waits for a collection, and a collection of the oldest
generation pauses the whole process for as long as it takes to scan every object
(issue 14 measured 285-422 ms). So each kind of request the gateway serves (a ``recording``
query answered from the cache and from the provider, an error answer, a media stream) runs
200 times with the collector off, and ``gc.collect()`` must then find nothing of ours.

Two third-party libraries make a cycle per use that nothing outside them can break without
reaching into their internals (``ALLOWED_CYCLES`` names them and why): graphql-core's
execution context, once per executed operation, and tenacity's retrying object, once per
provider call that is retried (a call that succeeds at once never builds one: the guard makes
the first attempt itself). Every cycle found must run through one of them, and none of the
request's own objects (the Request, uvicorn's request cycle, the loaders, the recordings:
``OURS``) may wait with them: ``Context.close`` lets go of them when the answer is built.

The gateway runs as ``serve`` runs it: under uvicorn on a loopback socket (uvicorn's own
per-request objects count too), with the default upstream transport (aiohttp) and memory
cache, against the sandbox in a process of its own (its garbage is not ours). The client
speaks HTTP/1.1 over a plain socket, in this thread: it makes no cycles of its own.
"""

from __future__ import annotations

import contextlib
import gc
import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.main import create_app
from app.models import Provider
from app.sandbox import DEMO, build_dataset
from app.settings import Settings
from tests.media.support import MEDIA_QUERY, media_variables
from tests.perf.processes import run
from tests.servers import serve
from tests.support import RECORDING_QUERY, sandbox_env

REQUESTS = 200
RECORDINGS = 120  # per provider: enough ready recordings for 200 distinct cache misses

GRAPHQL_CORE = "strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext"
TENACITY = "tenacity.asyncio.AsyncRetrying"
#: Third-party objects at the heart of a cycle we cannot break from outside, and why. Every
#: cycle the collector finds must run through one of them.
ALLOWED_CYCLES = {
    GRAPHQL_CORE: (
        "graphql-core 3.3's ExecutionContext keeps its async_helpers, bound methods of itself: "
        "one cycle per executed operation, with the execution's own state (the variables, the "
        "fields collected, the errors it reports)"
    ),
    TENACITY: (
        "tenacity 9 keeps the actions of its last iteration, bound methods of the retrying "
        "object, in that object's thread-local iteration state: one cycle per retried "
        "provider call (app.resilience.guard), holding nothing of the request"
    ),
}

#: Our types, and the web stack's, that may ride on those cycles, and why. Anything else of
#: theirs found in the garbage is a request's object kept for the cycle collector.
ALLOWED_HELD = {
    "app.schema.context.Context": (
        "graphql-core's execution context references it (context_value); Context.close has "
        "emptied it"
    ),
    "app.errors.RecordingNotFoundError": "graphql-core keeps the errors it reports",
}
#: Where a request's own objects come from: none of them may wait for the cycle collector.
OURS = ("app.", "starlette.", "uvicorn.", "strawberry.dataloader", "aiohttp.", "httpx.")


class Connection:
    """One keep-alive HTTP/1.1 connection over a plain socket."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.socket = socket.create_connection((parts.hostname or "", parts.port or 80))
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = [f"{method} {path} HTTP/1.1", "Host: gateway.test"]
        if body:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.socket.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        response_head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status, *lines = response_head.decode("latin-1").split("\r\n")
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(fields["content-length"])
        while len(self.buffer) < length:
            self._read()
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        assert status.split()[1] in ("200", "206"), (status, content)
        return content

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        answer: dict[str, Any] = json.loads(self.request("POST", "/graphql", body))
        return answer

    def _read(self) -> None:
        data = self.socket.recv(65536)
        assert data, "the gateway closed the connection"
        self.buffer += data

    def close(self) -> None:
        self.socket.close()


@dataclass
class Live:
    gateway_url: str
    ids: list[tuple[str, str]]  # (provider, id) of recordings whose media is ready


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with run(["sandbox", "--recordings", str(RECORDINGS)]) as sandbox_url:
        settings = Settings.from_env(sandbox_env(DEMO, sandbox_url))
        with serve(create_app(settings)) as gateway_url:
            dataset = build_dataset(replace(DEMO, recordings_per_provider=RECORDINGS))
            ids = [
                (name.upper(), r.id)
                for name in ("twilio", "signalwire", "bird")
                for r in dataset.listing(name)
                if r.ready
            ]
            yield Live(gateway_url, ids)


def type_name(thing: object) -> str:
    return f"{type(thing).__module__}.{type(thing).__qualname__}"


def cyclic_garbage(warm_up: Callable[[], None], measured: Callable[[], None]) -> list[object]:
    """What the cycle collector finds after ``measured`` ran with it off."""
    warm_up()
    gc.collect()
    gc.disable()
    try:
        measured()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def cycles_without(garbage: list[object], anchors: set[int]) -> list[list[object]]:
    """The cycles among ``garbage`` left once the objects whose ids are ``anchors`` are
    taken out (Tarjan's strongly connected components, iteratively)."""
    by_id = {id(thing): thing for thing in garbage if id(thing) not in anchors}
    edges = {
        key: [id(r) for r in gc.get_referents(thing) if id(r) in by_id]
        for key, thing in by_id.items()
    }
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[list[object]] = []
    for root in by_id:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    found.append([by_id[member] for member in component])
    return found


def assert_no_cycles(garbage: list[object], third_party: set[str]) -> None:
    """Every cycle runs through an allowed third-party object, and none of the request's own
    objects (ours, Starlette's, uvicorn's...) waits with them. ``third_party``: the allowed
    cycles this kind of request makes (if a library stops making one, this says so: take it
    out of ``ALLOWED_CYCLES``, and ``Context.close`` may no longer be needed)."""
    anchors = {id(thing) for thing in garbage if type_name(thing) in ALLOWED_CYCLES}
    made = {type_name(thing) for thing in garbage if id(thing) in anchors}
    assert made == third_party, f"third-party cycles: {made}, expected {third_party}"
    ours = cycles_without(garbage, anchors)
    assert not ours, [Counter(map(type_name, cycle)).most_common(10) for cycle in ours[:5]]
    held = Counter(
        name
        for name in map(type_name, garbage)
        if name.startswith(OURS) and name not in ALLOWED_HELD
    )
    assert not held, f"request objects kept for the cycle collector: {held.most_common(20)}"


def recording(client: Connection, provider: str, rid: str) -> None:
    body = client.graphql(RECORDING_QUERY, {"provider": provider, "id": rid})
    assert body["data"]["recording"]["id"] == rid, body


def test_a_cached_recording(live: Live) -> None:
    """Answered from the response cache (``app.responses``): nothing is executed, so not even
    graphql-core's cycle is made."""
    provider, rid = live.ids[0]
    with connection(live) as client:
        garbage = cyclic_garbage(
            lambda: recording(client, provider, rid),
            lambda: repeat(REQUESTS, lambda: recording(client, provider, rid)),
        )
    assert_no_cycles(garbage, set())


def test_recordings_fetched_from_the_provider(live: Live) -> None:
    """Distinct ids: every request misses the cache and calls the provider."""
    assert len(live.ids) > REQUESTS + 1
    first, *rest = live.ids
    misses = iter(rest)
    with connection(live) as client:
        garbage = cyclic_garbage(
            lambda: recording(client, *first),
            lambda: repeat(REQUESTS, lambda: recording(client, *next(misses))),
        )
    assert_no_cycles(garbage, {GRAPHQL_CORE})  # answered at once: no retrying object


def test_an_error_answer(live: Live) -> None:
    """A recording the provider does not have: a typed NOT_FOUND error, cached too."""
    provider, _ = live.ids[0]
    missing = "RE" + "0" * 32

    def ask() -> None:
        body = client.graphql(RECORDING_QUERY, {"provider": provider, "id": missing})
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body

    with connection(live) as client:
        garbage = cyclic_garbage(ask, lambda: repeat(REQUESTS, ask))
    assert_no_cycles(garbage, {GRAPHQL_CORE})


def test_a_media_stream(live: Live) -> None:
    """A PROXY link to a WAV, streamed from the provider through the gateway."""
    provider, rid = live.ids[0]
    with connection(live) as client:
        variables = media_variables(Provider[provider], rid, fmt="WAV")
        url = client.graphql(MEDIA_QUERY, variables)["data"]["recording"]["media"]["url"]
        path = urlsplit(url).path

        def stream() -> None:
            assert client.request("GET", path)[:4] == b"RIFF"

        garbage = cyclic_garbage(stream, lambda: repeat(REQUESTS, stream))
    assert_no_cycles(garbage, set())  # a media stream makes no cycle at all


def repeat(times: int, action: Callable[[], None]) -> None:
    for _ in range(times):
        action()


@contextlib.contextmanager
def connection(live: Live) -> Iterator[Connection]:
    client = Connection(live.gateway_url)
    try:
        yield client
    finally:
        client.close()
