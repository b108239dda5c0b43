"""The rules a deletion relies on, each on its own: its cost, a mutation's answer never kept,
the cache forgetting a recording (also one being fetched meanwhile), and which failed
attempts may have deleted."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import graphql
import httpx
import pytest
import strawberry
from starlette.applications import Starlette

from app import providers
from app.cache import BoundedMemoryCache, Fresh, RecordingCache
from app.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    RecordingNotFoundError,
)
from app.models import Provider, Recording, RecordingStatus
from app.providers.base import may_have_acted
from app.recordings import RecordingService
from app.sandbox import Sandbox
from app.schema.budget import RequestBudget
from app.schema.cost import estimate
from app.schema.http_cache import Freshness
from app.settings import Settings
from app.upstream.client import Upstream
from tests.support import upstream_count

pytestmark = pytest.mark.anyio

D = 'deleteRecording(provider: TWILIO, id: "RE1")'


def cost(document: str, operation: str | None = None, **variables: Any) -> int:
    return estimate(graphql.parse(document), operation, variables, providers=3)


def test_each_deletion_costs_one_upstream_request() -> None:
    assert cost(f"mutation {{ {D} {{ deleted }} }}") == 1
    assert cost(f"mutation {{ a: {D} {{ deleted }} b: {D} {{ alreadyDeleted }} }}") == 2
    both = f"fragment Both on Mutation {{ a: {D} {{ id }} b: {D} {{ id }} }}"
    assert cost(f"mutation {{ ...Both }} {both}") == 2
    assert cost(f"mutation {{ a: {D} @skip(if: true) {{ id }} b: {D} {{ id }} }}") == 1
    assert cost(f"mutation {{ {D} {{ provider id deleted alreadyDeleted __typename }} }}") == 1
    # Only the operation that runs counts; a query's fields mean nothing at the mutation root.
    two = f'query Q {{ recording(provider: BIRD, id: "1") {{ id }} }} mutation M {{ {D} {{ id }} }}'
    assert (cost(two, "Q"), cost(two, "M")) == (1, 1)
    assert cost('mutation { recording(provider: BIRD, id: "1") { id } }') == 0
    assert cost(f"{{ {D} {{ id }} }}") == 0  # not a Query field


def recording() -> Recording:
    return Recording(Provider.BIRD, "r-1", RecordingStatus.COMPLETED, "available")


@strawberry.type
class Query:
    @strawberry.field
    def held(self, info: strawberry.Info) -> int:
        info.context.freshness.recording(Fresh(recording(), time.time() + 60, key="rg:key"))
        return 1


@strawberry.type
class Mutation:
    @strawberry.mutation
    def held(self, info: strawberry.Info) -> int:
        info.context.freshness.recording(Fresh(recording(), time.time() + 60, key="rg:key"))
        return 1


async def test_a_mutations_answer_is_never_kept_even_when_it_holds_a_recording() -> None:
    """What the response cache keeps is what ``Freshness.shared_until`` allows; the budget
    (run for every operation of the gateway's schema) marks a mutation's answer no-store."""
    schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[RequestBudget])
    settings = Settings()
    answers = {}
    for document in ("{ held }", "mutation { held }"):
        freshness = Freshness()
        context = SimpleNamespace(
            settings=settings,
            tenant=SimpleNamespace(providers=[Provider.BIRD], rate_limit=None, name="acme"),
            request=SimpleNamespace(state=SimpleNamespace(), headers={}),
            freshness=freshness,
        )
        result = await schema.execute(document, context_value=context)
        assert result.errors is None and result.data == {"held": 1}
        answers[document] = (freshness.shared_until(), freshness.no_store_reason)
    assert answers["{ held }"][0] is not None
    assert answers["mutation { held }"] == (None, "a mutation")


def cache() -> RecordingCache:
    return RecordingCache(BoundedMemoryCache(100, timeout=None))


async def test_forget_leaves_not_found_and_tells_on_change() -> None:
    store = cache()
    changed: list[str] = []

    async def on_change(keys: Any) -> None:
        changed.extend(keys)

    store.on_change = on_change
    await store.store("k", recording())
    gone = RecordingNotFoundError("Bird has no recording 'r-1'", provider=Provider.BIRD)
    assert await store.forget("k", gone) == recording()
    with pytest.raises(RecordingNotFoundError, match="has no recording"):
        await store.fetch("k", _never)
    assert changed == ["k"]
    assert await store.forget("k", gone) is None  # nothing held any more; still purged
    assert changed == ["k", "k"]


async def test_forget_without_a_verdict_drops_the_entry() -> None:
    store = cache()
    await store.store("k", recording())
    await store.forget("k")
    loads = []

    async def load() -> Recording:
        loads.append(1)
        return recording()

    assert (await store.fetch("k", load)).recording == recording()
    assert loads == [1]


async def test_a_fetch_in_the_air_during_a_deletion_is_not_stored() -> None:
    """The provider answered the GET before the DELETE: the answer goes to those who asked,
    but the cache keeps the deletion's NOT_FOUND, not the old state (for an hour)."""
    store = cache()
    asked, answer = asyncio.Event(), asyncio.Event()

    async def slow() -> Recording:
        asked.set()
        await answer.wait()
        return recording()

    flight = asyncio.ensure_future(store.fetch("k", slow))
    await asked.wait()
    await store.forget("k", RecordingNotFoundError("gone", provider=Provider.BIRD))
    answer.set()
    fetched = await flight
    assert fetched.recording == recording()
    assert fetched.expires <= time.time()  # not cached, so not fresh: no answer keeps it
    with pytest.raises(RecordingNotFoundError):
        await store.fetch("k", _never)


async def _never() -> Recording:
    raise AssertionError("the cache should have answered")


def failure(
    cause: BaseException | None, kind: type[ProviderError] = ProviderUnavailableError
) -> ProviderError:
    error = kind("failed", provider=Provider.TWILIO)
    error.__cause__ = cause
    return error


def test_which_failures_may_have_reached_the_provider() -> None:
    request = httpx.Request("DELETE", "https://api.example/x")
    never_sent: list[httpx.TransportError] = [
        httpx.ConnectError("refused", request=request),
        httpx.ConnectTimeout("slow", request=request),
        httpx.PoolTimeout("busy", request=request),
    ]
    for cause in never_sent:
        assert not may_have_acted(failure(cause)), cause
    assert not may_have_acted(failure(None, RateLimitedError))  # a refusal did nothing
    maybe: list[httpx.TransportError | None] = [
        httpx.ReadTimeout("lost", request=request),
        httpx.ReadError("reset", request=request),
        httpx.RemoteProtocolError("cut", request=request),
        None,  # an HTTP status (a 502/504 from a proxy)
    ]
    for lost in maybe:
        assert may_have_acted(failure(lost)), lost
    assert may_have_acted(failure(None, ProviderAuthError))


class Stalling(httpx.AsyncBaseTransport):
    """The sandbox, except that a DELETE is never answered (its request was sent)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.deleting = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            self.deleting.set()
            await asyncio.Event().wait()
        return await self.inner.handle_async_request(request)


async def test_a_deletion_cut_short_drops_the_cached_copy(
    sandbox_app: Starlette, sandbox: Sandbox, settings: Settings
) -> None:
    transport = Stalling(httpx.ASGITransport(app=sandbox_app))
    tenant = settings.tenant_settings()["default"]
    adapters = providers.build_providers(tenant, Upstream(transport, timeout=30))
    service = RecordingService(adapters, cache())
    rid = sandbox.sample_ids()["bird"]
    await service.get(Provider.BIRD, rid)
    asked = upstream_count(sandbox, rid)
    deleting = asyncio.ensure_future(service.delete(Provider.BIRD, rid))
    await transport.deleting.wait()
    deleting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await deleting
    assert (await service.get(Provider.BIRD, rid)).id == rid
    assert upstream_count(sandbox, rid) == asked + 1  # asked again, not the cached copy
