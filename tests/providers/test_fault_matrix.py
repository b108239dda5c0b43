"""Every fault a provider or its network can throw, against every provider it applies to.

The gateway runs with its real upstream transport over loopback sockets to the sandbox
(uvicorn), behind the sandbox's ``WireFront`` so that wire faults (a hang, a trickle, a
reset) happen on a real connection. For each case: the typed error at its path (with its
provider), an answer within ``GATEWAY_UPSTREAM_TIMEOUT`` plus 1 s, and the healthy
providers of the same request still answering. Faults are persistent (``PERSISTENT``
uses, more than any retry policy makes) so that retries meet them too; each case gets a
fresh gateway (a fresh circuit breaker, a fresh cache) over one sandbox, its server and
its front for the module (started once: the matrix stays fast), faults cleared around
each case. Metadata faults are asked through GraphQL with
every provider aliased in one query; media faults (S3's presigned host, and redirects,
which only media downloads follow) through ``/media/{token}``, the healthy providers'
media downloaded at the same time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from app import providers
from app.models import Provider
from app.providers.base import HttpProvider
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.wire import WireFront, front_in_thread
from app.settings import Settings
from app.upstream import build_transport
from app.upstream.client import Upstream
from tests.media.support import mint
from tests.servers import serve
from tests.support import gateway_client, graphql, sandbox_env, upstream_count

pytestmark = pytest.mark.anyio

#: ``GATEWAY_UPSTREAM_TIMEOUT`` of the gateway under test, and the slack an answer may take.
DEADLINE = 1.0
SLACK = 1.0
#: How long a case may run before it is failed (a gateway without a deadline waits for
#: a trickle's last byte: a minute).
GIVE_UP = DEADLINE + SLACK + 3.0
#: Uses of a persistent fault: more attempts than any retry policy makes.
PERSISTENT = 20
#: Seconds between the bytes of a trickle: a per-read timeout never fires, a deadline does.
TRICKLE = 0.05
LIMIT = 16 * 1024
RETRY_AFTER = 120


@dataclass
class Stand:
    """The gateway (``client``) over the sandbox behind its wire front."""

    client: httpx.AsyncClient
    sandbox: Sandbox
    front: WireFront
    app: Starlette
    settings: Settings
    ids: dict[Provider, str] = field(default_factory=dict)

    async def provider_json(self, provider: Provider, rid: str) -> Mapping[str, Any]:
        """The provider's own JSON for ``rid``, read from the sandbox app directly (no
        gateway, no front, so no fault is used and nothing is cached)."""
        upstream = Upstream(httpx.ASGITransport(app=self.app), timeout=5)
        tenant = self.settings.tenant_settings()["default"]
        adapter = providers.build_providers(tenant, upstream)[provider]
        assert isinstance(adapter, HttpProvider)
        return await adapter.get_json(adapter.recording_url(rid))


CONFIG = SandboxConfig()


@pytest.fixture(scope="module")
def wired() -> Iterator[tuple[Starlette, WireFront]]:
    """The sandbox app, served by uvicorn, behind its front (in a thread of its own)."""
    app = create_sandbox_app(CONFIG)
    sandbox: Sandbox = app.state.sandbox
    with serve(app) as backend:
        host, port = backend.removeprefix("http://").split(":")
        with front_in_thread(sandbox.faults, (host, int(port))) as front:
            yield app, front


@pytest.fixture
async def stand(
    wired: tuple[Starlette, WireFront], request: pytest.FixtureRequest
) -> AsyncIterator[Stand]:
    """A fresh gateway over the module's sandbox; ``request.param`` names its upstream
    transport (``GATEWAY_UPSTREAM_TRANSPORT``, aiohttp unless a case says)."""
    app, front = wired
    sandbox: Sandbox = app.state.sandbox
    sandbox.faults.clear()
    front.played.clear()
    env = sandbox_env(CONFIG, front.url) | {
        "GATEWAY_UPSTREAM_TIMEOUT": str(DEADLINE),
        "GATEWAY_UPSTREAM_MAX_BODY_BYTES": str(LIMIT),
        "GATEWAY_UPSTREAM_TRANSPORT": getattr(request, "param", "aiohttp"),
    }
    settings = Settings.from_env(env)
    try:
        async with gateway_client(settings, build_transport(settings)) as client:
            ids = {p: sandbox.sample_ids()[p.value] for p in Provider}
            yield Stand(client, sandbox, front, app, settings, ids)
    finally:
        sandbox.faults.clear()


#: A fault: queue it on the sandbox for the ``where`` ("twilio", …, "s3") of ``provider``.
Inject = Callable[[Stand, str, Provider], Awaitable[None]]


def wire(kind: Any) -> Inject:
    async def inject(stand: Stand, where: str, provider: Provider) -> None:
        stand.sandbox.faults.wire(where, kind, times=PERSISTENT, interval=TRICKLE)

    return inject


async def status_500(stand: Stand, where: str, provider: Provider) -> None:
    stand.sandbox.faults.inject(where, 500, times=PERSISTENT)


async def status_503_html(stand: Stand, where: str, provider: Provider) -> None:
    stand.sandbox.faults.html(where, 503, times=PERSISTENT)


async def status_429_long(stand: Stand, where: str, provider: Provider) -> None:
    stand.sandbox.faults.inject(where, 429, retry_after=RETRY_AFTER, times=PERSISTENT)


async def truncated_json(stand: Stand, where: str, provider: Provider) -> None:
    payload = await stand.provider_json(provider, stand.ids[provider])
    stand.sandbox.faults.truncated_json(where, payload, times=PERSISTENT)


async def wrong_shape_list(stand: Stand, where: str, provider: Provider) -> None:
    payload = await stand.provider_json(provider, stand.ids[provider])
    body = json.dumps([payload]).encode()
    stand.sandbox.faults.inject(where, 200, body=body, times=PERSISTENT)


async def wrong_shape_object(stand: Stand, where: str, provider: Provider) -> None:
    """Valid JSON, an object, but not a recording: the fields the adapter reads are missing."""
    stand.sandbox.faults.answer_json(where, {"status": "completed"}, times=PERSISTENT)


async def another_recording(stand: Stand, where: str, provider: Provider) -> None:
    listing = stand.sandbox.dataset.listing(provider.value, stand.sandbox.account(provider.value))
    other = next(record.id for record in listing if record.id != stand.ids[provider])
    payload = await stand.provider_json(provider, other)
    stand.sandbox.faults.answer_json(where, payload, times=PERSISTENT)


async def redirect_with_json(stand: Stand, where: str, provider: Provider) -> None:
    payload = await stand.provider_json(provider, stand.ids[provider])
    stand.sandbox.faults.redirect(where, "/elsewhere", status=302, payload=payload)


async def oversized(stand: Stand, where: str, provider: Provider) -> None:
    stand.sandbox.faults.oversized(where, 4 * LIMIT, declare_length=False, times=PERSISTENT)


async def redirect_private(stand: Stand, where: str, provider: Provider) -> None:
    location = "http://169.254.169.254/latest/meta-data/"
    stand.sandbox.faults.redirect(where, location, times=PERSISTENT)


#: A path of each faulted host's own (so the fault answers it again): a loop.
LOOP = {
    "twilio": "/2010-04-01/Accounts/loop.mp3",
    "signalwire": "/api/laml/2010-04-01/loop.mp3",
    "bird": "/workspaces/loop.mp3",
    "s3": "/_s3/loop.mp3",
}


async def redirect_loop(stand: Stand, where: str, provider: Provider) -> None:
    stand.sandbox.faults.redirect(where, LOOP[where], times=PERSISTENT)


@dataclass(frozen=True)
class Case:
    inject: Inject
    code: str
    #: Where the fault is: the API providers (metadata through GraphQL), or media.
    where: tuple[str, ...]
    media: bool = False
    #: The upstream transports that meet it: both for wire faults, where they differ.
    transports: tuple[str, ...] = ("aiohttp",)


API = ("twilio", "signalwire", "bird")
MEDIA = ("twilio", "signalwire", "bird", "s3")
BOTH = ("aiohttp", "httpx")
UNAVAILABLE, BAD, LIMITED = "PROVIDER_UNAVAILABLE", "PROVIDER_BAD_RESPONSE", "PROVIDER_RATE_LIMITED"

FAULTS: dict[str, Case] = {
    "hang": Case(wire("hang"), UNAVAILABLE, API, transports=BOTH),
    "trickle-head": Case(wire("trickle-head"), UNAVAILABLE, API, transports=BOTH),
    "trickle-body": Case(wire("trickle-body"), UNAVAILABLE, API, transports=BOTH),
    "reset-before-head": Case(wire("reset-head"), UNAVAILABLE, API, transports=BOTH),
    "reset-mid-body": Case(wire("reset-body"), UNAVAILABLE, API, transports=BOTH),
    "500": Case(status_500, UNAVAILABLE, API),
    "503-html": Case(status_503_html, UNAVAILABLE, API),
    "429-long-retry-after": Case(status_429_long, LIMITED, API),
    "truncated-json": Case(truncated_json, BAD, API),
    "wrong-shape-list": Case(wrong_shape_list, BAD, API),
    "wrong-shape-object": Case(wrong_shape_object, BAD, API),
    "another-recording": Case(another_recording, BAD, API),
    "3xx-with-json": Case(redirect_with_json, BAD, API),
    "oversized": Case(oversized, BAD, API),
    # Bird's presigned media host, whose faults only a media download meets.
    "s3-hang": Case(wire("hang"), UNAVAILABLE, ("s3",), media=True, transports=BOTH),
    "s3-trickle-head": Case(
        wire("trickle-head"), UNAVAILABLE, ("s3",), media=True, transports=BOTH
    ),
    "s3-reset-before-head": Case(
        wire("reset-head"), UNAVAILABLE, ("s3",), media=True, transports=BOTH
    ),
    "s3-500": Case(status_500, UNAVAILABLE, ("s3",), media=True),
    "s3-503-html": Case(status_503_html, UNAVAILABLE, ("s3",), media=True),
    "s3-429-long-retry-after": Case(status_429_long, LIMITED, ("s3",), media=True),
    # Redirects are followed by media downloads only.
    "redirect-to-private-host": Case(redirect_private, BAD, MEDIA, media=True),
    "redirect-loop": Case(redirect_loop, BAD, MEDIA, media=True),
}

#: The provider whose call meets a fault at ``where`` (S3 is Bird's media host).
PROVIDER_OF = {
    "twilio": Provider.TWILIO,
    "signalwire": Provider.SIGNALWIRE,
    "bird": Provider.BIRD,
    "s3": Provider.BIRD,
}
MATRIX = [
    pytest.param(name, where, transport, id=f"{name}-{where}-{transport}")
    for name, case in FAULTS.items()
    for where in case.where
    for transport in case.transports
]


def every_provider_query(ids: Mapping[Provider, str]) -> str:
    fields = "\n".join(
        f'{p.value}: recording(provider: {p.name}, id: "{rid}") {{ id status }}'
        for p, rid in ids.items()
    )
    return f"query {{ {fields} }}"


@pytest.mark.parametrize(("fault", "where", "stand"), MATRIX, indirect=["stand"])
async def test_every_fault_is_typed_timely_and_contained(
    stand: Stand, fault: str, where: str
) -> None:
    case = FAULTS[fault]
    provider = PROVIDER_OF[where]
    if case.media:
        await media_case(stand, case, where, provider)
    else:
        await metadata_case(stand, case, where, provider)


async def metadata_case(stand: Stand, case: Case, where: str, provider: Provider) -> None:
    await case.inject(stand, where, provider)
    with anyio.move_on_after(GIVE_UP) as waited:
        started = time.monotonic()
        body = await graphql(stand.client, every_provider_query(stand.ids))
        elapsed = time.monotonic() - started
    assert not waited.cancelled_caught, f"no answer in {GIVE_UP} s"
    assert elapsed <= DEADLINE + SLACK, f"answered in {elapsed:.2f} s"

    errors = body["errors"]
    assert [e["path"] for e in errors] == [[provider.value]], errors
    extensions = errors[0]["extensions"]
    assert extensions["code"] == case.code, errors
    assert extensions["provider"] == provider.name
    if case.code == LIMITED:
        assert extensions["retryAfter"] == RETRY_AFTER
    if case.inject is status_503_html:
        assert "providerCode" not in extensions, "an HTML page has no vendor code"
    assert body["data"][provider.value] is None
    for other, rid in stand.ids.items():
        if other is not provider:
            assert body["data"][other.value]["id"] == rid, "healthy providers answer"


async def media_case(stand: Stand, case: Case, where: str, provider: Provider) -> None:
    urls = {p: await mint(stand.client, p, rid) for p, rid in stand.ids.items()}
    await case.inject(stand, where, provider)
    healthy = [p for p in Provider if p is not provider]
    with anyio.move_on_after(GIVE_UP) as waited:
        started = time.monotonic()
        faulty, *others = await asyncio.gather(
            stand.client.get(urls[provider]), *(stand.client.get(urls[p]) for p in healthy)
        )
        elapsed = time.monotonic() - started
    assert not waited.cancelled_caught, f"no answer in {GIVE_UP} s"
    assert elapsed <= DEADLINE + SLACK, f"answered in {elapsed:.2f} s"

    assert faulty.status_code == 502, faulty.text
    assert faulty.json()["error"]["code"] == case.code
    for other, response in zip(healthy, others, strict=True):
        assert response.status_code == 200, (other, response.text)
        assert response.headers["content-type"].startswith("audio/")
        assert response.content, "healthy media flows"


TRANSIENT: dict[str, Inject] = {
    "503": lambda stand, where, provider: once_503(stand, where),
    "reset-before-head": lambda stand, where, provider: once_reset(stand, where),
}


async def once_503(stand: Stand, where: str) -> None:
    stand.sandbox.faults.inject(where, 503)


async def once_reset(stand: Stand, where: str) -> None:
    stand.sandbox.faults.wire(where, "reset-head")


@pytest.mark.parametrize("where", API)
@pytest.mark.parametrize("fault", list(TRANSIENT))
async def test_a_transient_fault_is_retried_away(stand: Stand, fault: str, where: str) -> None:
    """One 503 or one reset, then the provider is well again: the GET is retried, and the
    client never sees the fault."""
    provider = PROVIDER_OF[where]
    rid = stand.ids[provider]
    await TRANSIENT[fault](stand, where, provider)
    before = upstream_count(stand.sandbox, rid)
    with anyio.move_on_after(GIVE_UP) as waited:
        body = await graphql(stand.client, every_provider_query({provider: rid}))
    assert not waited.cancelled_caught
    assert "errors" not in body, body
    assert body["data"][provider.value]["id"] == rid
    assert stand.sandbox.faults.pending() == [], "the fault was met"
    if fault == "503":
        assert upstream_count(stand.sandbox, rid) == before + 2, "asked twice"
    else:
        assert stand.front.played == [(where, "reset-head")]
        assert upstream_count(stand.sandbox, rid) == before + 1, "the reset never got through"
