"""A provider's answer is checked before it is believed (or cached), for every provider.

Faults are the sandbox's, faithful to each provider's shapes: another recording's own JSON,
a 3xx carrying the recording's JSON, bodies over ``GATEWAY_UPSTREAM_MAX_BODY_BYTES``
(declared, or chunked so only counting finds them), and S3 refusing Bird's presigned link.
Each is a typed error at its path, nothing is cached (the next request goes upstream again
and gets the right answer), and the other providers in the same request still answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app import providers
from app.models import Provider
from app.providers.base import HttpProvider
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from app.upstream.client import Upstream
from tests.media.support import mint
from tests.support import gateway_client, graphql, sandbox_env, upstream_count

pytestmark = pytest.mark.anyio

LIMIT = 16 * 1024
PIECE = 4096


class CountingTransport(httpx.AsyncBaseTransport):
    """The sandbox over ASGI, counting the body bytes the gateway takes from its answers."""

    def __init__(self, app: Starlette) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.taken = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=Counted(response.stream, self),
            extensions=response.extensions,
        )


class Counted(httpx.AsyncByteStream):
    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, owner: CountingTransport
    ) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self.stream = stream
        self.owner = owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # httpx's ASGITransport hands over the whole body at once; a socket delivers it in
        # pieces, and the gateway may stop taking them: split it as the network would.
        async for block in self.stream:
            for start in range(0, len(block), PIECE):
                self.owner.taken += len(block[start : start + PIECE])
                yield block[start : start + PIECE]

    async def aclose(self) -> None:
        await self.stream.aclose()


@dataclass
class Rig:
    client: httpx.AsyncClient
    sandbox: Sandbox
    transport: CountingTransport
    settings: Settings

    async def provider_json(self, provider: Provider, rid: str) -> Mapping[str, Any]:
        """The provider's own JSON for ``rid``, as the adapter reads it (not through the
        gateway: nothing cached)."""
        upstream = Upstream(httpx.ASGITransport(app=self.transport.inner.app), timeout=5)
        tenant = self.settings.tenant_settings()["default"]
        adapter = providers.build_providers(tenant, upstream)[provider]
        assert isinstance(adapter, HttpProvider)
        return await adapter.get_json(adapter.recording_url(rid))


@pytest.fixture
async def rig(sandbox_config: SandboxConfig, sandbox_app: Starlette) -> AsyncIterator[Rig]:
    env = sandbox_env(sandbox_config) | {"GATEWAY_UPSTREAM_MAX_BODY_BYTES": str(LIMIT)}
    settings = Settings.from_env(env)
    transport = CountingTransport(sandbox_app)
    async with gateway_client(settings, transport) as client:
        yield Rig(client, sandbox_app.state.sandbox, transport, settings)


def every_provider_query(ids: Mapping[Provider, str]) -> str:
    fields = "\n".join(
        f'{p.value}: recording(provider: {p.name}, id: "{rid}") {{ id status }}'
        for p, rid in ids.items()
    )
    return f"query {{ {fields} }}"


Fault = Callable[[Rig, Provider, str], Any]


async def another_recordings_json(rig: Rig, provider: Provider, rid: str) -> None:
    listing = rig.sandbox.dataset.listing(provider.value, rig.sandbox.account(provider.value))
    other = next(record.id for record in listing if record.id != rid)
    rig.sandbox.faults.answer_json(provider.value, await rig.provider_json(provider, other))


async def redirect_with_json(rig: Rig, provider: Provider, rid: str) -> None:
    """A 302 whose body is the recording's own JSON: a metadata fetch takes no redirect."""
    payload = await rig.provider_json(provider, rid)
    rig.sandbox.faults.redirect(provider.value, "/elsewhere", status=302, payload=payload)


async def oversized_declared(rig: Rig, provider: Provider, rid: str) -> None:
    rig.sandbox.faults.oversized(provider.value, 8 * 2**20)


async def oversized_chunked(rig: Rig, provider: Provider, rid: str) -> None:
    rig.sandbox.faults.oversized(provider.value, 8 * 2**20, declare_length=False)


FAULTS: dict[str, Fault] = {
    "another-recording": another_recordings_json,
    "3xx-with-json": redirect_with_json,
    "oversized-declared": oversized_declared,
    "oversized-chunked": oversized_chunked,
}


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_bad_answer_is_a_typed_error_and_not_cached(
    rig: Rig, provider: Provider, fault: str
) -> None:
    ids = {p: rig.sandbox.sample_ids()[p.value] for p in Provider}
    rid = ids[provider]
    await FAULTS[fault](rig, provider, rid)
    taken_before = rig.transport.taken

    body = await graphql(rig.client, every_provider_query(ids))

    errors = body["errors"]
    assert [e["path"] for e in errors] == [[provider.value]], errors
    assert errors[0]["extensions"]["code"] == "PROVIDER_BAD_RESPONSE"
    assert body["data"][provider.value] is None
    for other, other_id in ids.items():
        if other is not provider:
            assert body["data"][other.value]["id"] == other_id, "healthy providers answer"
    if fault.startswith("oversized"):
        assert rig.transport.taken - taken_before < 4 * LIMIT, "not read whole"

    before = upstream_count(rig.sandbox, rid)
    again = await graphql(rig.client, every_provider_query({provider: rid}))
    assert "errors" not in again, again
    assert again["data"][provider.value]["id"] == rid
    assert upstream_count(rig.sandbox, rid) == before + 1, "nothing was cached"


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
async def test_an_answer_within_the_cap_is_read(rig: Rig, provider: Provider) -> None:
    """The cap counts the body: a real answer just under it is fine (and chunked too)."""
    rid = rig.sandbox.sample_ids()[provider.value]
    payload = dict(await rig.provider_json(provider, rid))
    size = len(json.dumps(payload).encode())
    payload["padding"] = "x" * (LIMIT - size - len(', "padding": ""'))
    assert len(json.dumps(payload).encode()) == LIMIT
    rig.sandbox.faults.inject(
        provider.value, 200, body=json.dumps(payload).encode(), declare_length=False
    )
    body = await graphql(rig.client, every_provider_query({provider: rid}))
    assert "errors" not in body, body


@pytest.mark.parametrize("status", [403, 401])
async def test_s3_refusing_birds_link_is_not_an_auth_error(rig: Rig, status: int) -> None:
    rid = rig.sandbox.sample_ids()["bird"]
    url = await mint(rig.client, Provider.BIRD, rid)
    rig.sandbox.faults.inject("s3", status)
    response = await rig.client.get(url)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "PROVIDER_BAD_RESPONSE"
    assert "the provider's media link was refused" in error["message"]
    assert "credentials" not in error["message"]
    assert (await rig.client.get(url)).status_code == 200, "a fresh link works again"


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
async def test_the_providers_own_403_is_still_an_auth_error(rig: Rig, provider: Provider) -> None:
    """Only a hop without credentials is the link's refusal; the API's 403 is the key's."""
    rid = rig.sandbox.sample_ids()[provider.value]
    url = await mint(rig.client, provider, rid)
    rig.sandbox.faults.inject(provider.value, 403)
    response = await rig.client.get(url)
    assert response.json()["error"]["code"] == "PROVIDER_AUTH_FAILED"


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\x00"], ids=repr)
async def test_an_id_with_a_trailing_character_is_bad_input(
    rig: Rig, provider: Provider, suffix: str
) -> None:
    rid = rig.sandbox.sample_ids()[provider.value] + suffix
    query = "query($p: Provider!, $id: ID!) { recording(provider: $p, id: $id) { id } }"
    body = await graphql(rig.client, query, {"p": provider.name, "id": rid})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert upstream_count(rig.sandbox, rid.strip()) == 0


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
async def test_an_oversized_error_body_keeps_its_status_meaning(
    rig: Rig, provider: Provider
) -> None:
    """A 503 with megabytes of HTML is still PROVIDER_UNAVAILABLE, read no further than the cap."""
    rid = rig.sandbox.sample_ids()[provider.value]
    html = b"<html>" + b"x" * (8 * 2**20) + b"</html>"
    attempts = 3  # a 503 is retried: each attempt reads no further than the cap
    rig.sandbox.faults.inject(
        provider.value,
        503,
        body=html,
        content_type="text/html",
        declare_length=False,
        times=attempts,
    )
    before = rig.transport.taken
    body = await graphql(rig.client, every_provider_query({provider: rid}))
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert rig.transport.taken - before < attempts * 4 * LIMIT
