"""HTTP caching of reads: Cache-Control from the cache's TTLs, a strong ETag, 304 without
an upstream request; POST never cached; media cached no longer than its link works."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from app.cache import BoundedMemoryCache, Fresh, RecordingCache, TtlPolicy
from app.main import create_app
from app.models import Provider, Recording, RecordingStatus
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.data import TRANSIENT
from app.schema.http_cache import Freshness, none_match, strong_etag
from app.settings import Settings
from tests.servers import serve
from tests.support import RECORDING_QUERY, gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

TTL = 100
ETAG = re.compile(r'^"[0-9a-f]{32}"$')
LISTING = "{ recordings(first: 2) { nodes { id } } }"
BY_REF = """query Refs($refs: [RecordingRefInput!]!) {
  recordingsByRef(refs: $refs) { id status } }"""
MEDIA_URL = """query Media($provider: Provider!, $id: ID!, $expiresIn: Int!) {
  recording(provider: $provider, id: $id) { id mediaUrl(expiresIn: $expiresIn) } }"""


def env(config: SandboxConfig, base_url: str | None = None) -> Settings:
    base = sandbox_env(config) if base_url is None else sandbox_env(config, base_url)
    return Settings.from_env(base | {"GATEWAY_CACHE_TTL": str(TTL)})


@pytest.fixture
async def client(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(env(sandbox_config), httpx.ASGITransport(app=sandbox_app)) as c:
        yield c


def params(query: str, variables: Mapping[str, Any] | None = None) -> dict[str, str]:
    return {"query": query, "variables": json.dumps(variables or {})}


def one(provider: Provider, rid: str) -> dict[str, str]:
    return params(RECORDING_QUERY, {"provider": provider.name, "id": rid})


def pick(sandbox: Sandbox, provider: str, *, running: bool) -> str:
    """The newest recording still running, or else the newest that will not change any more."""
    if running:
        return next(r.id for r in sandbox.dataset.listing(provider) if r.running)
    settled = (r for r in sandbox.dataset.listing(provider) if r.status not in TRANSIENT[provider])
    return next(r.id for r in settled)


def max_age(response: httpx.Response) -> int:
    directive, _, seconds = response.headers["cache-control"].partition(", max-age=")
    assert directive == "private", response.headers["cache-control"]
    return int(seconds)


def assert_no_store(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers


async def test_a_terminal_recording_is_private_for_what_is_left_of_its_ttl(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    response = await client.get(
        "/graphql", params=one(Provider.TWILIO, pick(sandbox, "twilio", running=False))
    )
    assert response.status_code == 200 and "errors" not in response.json()
    assert 90 < max_age(response) <= TTL
    assert ETAG.match(response.headers["etag"])
    assert response.headers["etag"] == strong_etag(response.content)
    assert "Authorization" in response.headers["vary"]  # one browser, several keys


async def test_an_active_recording_is_no_store(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    rid = pick(sandbox, "signalwire", running=True)
    response = await client.get("/graphql", params=one(Provider.SIGNALWIRE, rid))
    assert response.json()["data"]["recording"]["status"] in {"IN_PROGRESS", "PAUSED", "QUEUED"}
    assert_no_store(response)


async def test_not_found_is_no_store_even_when_it_comes_from_the_cache(
    client: httpx.AsyncClient,
) -> None:
    absent = one(Provider.TWILIO, "RE" + "0" * 32)
    for _ in range(2):  # the second NOT_FOUND is the cached one
        response = await client.get("/graphql", params=absent)
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert_no_store(response)


async def test_one_failed_ref_makes_the_whole_answer_no_store(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    good = {"provider": "TWILIO", "id": pick(sandbox, "twilio", running=False)}
    response = await client.get("/graphql", params=params(BY_REF, {"refs": [good]}))
    assert max_age(response) > 90
    bad = {"provider": "TWILIO", "id": "RE" + "0" * 32}
    response = await client.get("/graphql", params=params(BY_REF, {"refs": [good, bad]}))
    assert response.json()["data"]["recordingsByRef"][0] is not None
    assert_no_store(response)


async def test_a_listing_is_no_store(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    response = await client.get("/graphql", params=params(LISTING))
    assert response.json()["data"]["recordings"]["nodes"]
    assert_no_store(response)
    # Even beside a recording that alone would be cacheable.
    rid = pick(sandbox, "twilio", running=False)
    both = f'{{ recording(provider: TWILIO, id: "{rid}") {{ id }} {LISTING[1:-1]} }}'
    response = await client.get("/graphql", params=params(both))
    assert response.json()["data"]["recording"]["id"] == rid
    assert_no_store(response)


async def test_an_answer_that_holds_no_recording_is_no_store(client: httpx.AsyncClient) -> None:
    assert_no_store(await client.get("/graphql", params=params("{ __typename }")))


async def test_post_answers_are_no_store(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    rid = pick(sandbox, "twilio", running=False)
    variables = {"provider": "TWILIO", "id": rid}
    response = await client.post(
        "/graphql", json={"query": RECORDING_QUERY, "variables": variables}
    )
    assert response.json()["data"]["recording"]["id"] == rid
    assert_no_store(response)


async def test_if_none_match_answers_304_without_asking_the_provider(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    query = one(Provider.BIRD, pick(sandbox, "bird", running=False))
    first = await client.get("/graphql", params=query)
    etag = first.headers["etag"]
    asked = len(sandbox.requests)
    assert asked > 0
    for header in (etag, f'W/"other", {etag}', f"W/{etag}", "*"):
        again = await client.get("/graphql", params=query, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert 0 < max_age(again) <= max_age(first)
    assert len(sandbox.requests) == asked  # answered from the cache: no upstream request
    for header in ('"other"', "garbage", etag.strip('"')):
        fresh = await client.get("/graphql", params=query, headers={"If-None-Match": header})
        assert fresh.status_code == 200 and fresh.content == first.content, header


async def test_changed_data_changes_the_etag(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    record = sandbox.dataset.get("twilio", pick(sandbox, "twilio", running=False))
    assert record is not None
    query = one(Provider.TWILIO, record.id)
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(env(sandbox_config), transport) as replica:
        before = await replica.get("/graphql", params=query)
    sandbox.dataset.put(dataclasses.replace(record, duration=record.duration + 1))
    # Another replica (or this one once the entry expired) sees the change.
    async with gateway_client(env(sandbox_config), transport) as replica:
        after = await replica.get(
            "/graphql", params=query, headers={"If-None-Match": before.headers["etag"]}
        )
    assert after.status_code == 200
    assert after.json()["data"]["recording"]["durationSeconds"] == record.duration + 1
    assert ETAG.match(after.headers["etag"]) and after.headers["etag"] != before.headers["etag"]


async def test_media_links_bound_the_answer_and_the_media(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    variables = {"provider": "TWILIO", "id": rid, "expiresIn": 30}
    answer = await client.get("/graphql", params=params(MEDIA_URL, variables))
    url = answer.json()["data"]["recording"]["mediaUrl"]
    assert 0 < max_age(answer) <= 30  # never reused once the link in it is dead
    media = await client.get(url)
    assert media.status_code == 200
    assert 0 < max_age(media) <= 30


async def test_a_cache_hit_is_fresh_for_what_is_left_of_its_entry() -> None:
    now = [1_000.0]
    cache = RecordingCache(BoundedMemoryCache(10), TtlPolicy(terminal=TTL), clock=lambda: now[0])
    done = Recording(Provider.TWILIO, "RE" + "1" * 32, RecordingStatus.COMPLETED, "completed")

    async def load() -> Recording:
        return done

    fetched = await cache.fetch("k", load)
    assert fetched == Fresh(done, 1_000.0 + TTL)
    now[0] += 40
    hit = await cache.fetch("k", load)
    assert hit == fetched  # the entry keeps its expiry
    freshness = Freshness(clock=lambda: now[0])
    freshness.recording(hit)
    assert freshness.max_age() == TTL - 40


async def test_nothing_cached_is_not_fresh() -> None:
    cache = RecordingCache(None, clock=lambda: 5.0)
    done = Recording(Provider.TWILIO, "RE" + "1" * 32, RecordingStatus.COMPLETED, "completed")

    async def load() -> Recording:
        return done

    freshness = Freshness(clock=lambda: 5.0)
    freshness.recording(await cache.fetch("k", load))
    assert freshness.max_age() == 0


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", W/"y" , "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
        ('"x" "abc"', False),
        ("", False),
        (None, False),
    ],
)
def test_if_none_match_per_rfc_9110(header: str | None, matches: bool) -> None:
    assert none_match(header, '"abc"') is matches


def test_over_a_real_socket_304_has_no_body() -> None:
    sandbox_app = create_sandbox_app(SandboxConfig())
    sandbox: Sandbox = sandbox_app.state.sandbox
    rid = pick(sandbox, "twilio", running=False)
    with serve(sandbox_app) as sandbox_url:
        with serve(create_app(env(SandboxConfig(), sandbox_url))) as gateway_url:
            with httpx.Client(base_url=gateway_url) as http:
                first = http.get("/graphql", params=one(Provider.TWILIO, rid))
                etag = first.headers["etag"]
                asked = len(sandbox.requests)
                again = http.get(
                    "/graphql", params=one(Provider.TWILIO, rid), headers={"If-None-Match": etag}
                )
                assert again.status_code == 304
                assert again.content == b""
                assert "content-length" not in again.headers
                assert again.headers["etag"] == etag
                assert len(sandbox.requests) == asked
                # The connection is still good for the next request (no stray body bytes).
                assert (
                    http.get("/graphql", params=one(Provider.TWILIO, rid)).content == first.content
                )


# --- the Strawberry behaviour the view relies on (fails loudly if a version changes it) ---


@strawberry.type
class _Query:
    @strawberry.field
    def broken(self) -> str:
        raise ValueError("broken")


async def test_strawberry_hands_run_s_request_to_process_result_and_builds_a_body() -> None:
    """``GatewayGraphQL`` learns of errors in ``process_result`` through the very request it
    gave ``run``, and hashes the ``body`` of the Response ``run`` returns."""
    seen: list[tuple[Request, ExecutionResult]] = []

    class Probe(GraphQL[Any, None]):
        async def process_result(
            self, request: Request, result: ExecutionResult
        ) -> GraphQLHTTPResponse:
            seen.append((request, result))
            return await super().process_result(request, result)

    probe = Probe(strawberry.Schema(_Query))
    returned: list[Response] = []

    async def endpoint(request: Request) -> Response:
        response = await probe.run(request)
        assert seen and seen[-1][0] is request
        returned.append(response)
        return response

    app = Starlette(routes=[Route("/", endpoint, methods=["GET"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get("/", params={"query": "{ broken }"})
    assert seen[-1][1].errors
    assert isinstance(returned[-1].body, bytes) and returned[-1].body == answer.content
