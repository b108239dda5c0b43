"""Library behaviour the gateway relies on, each named and checked against the real thing.

When one of these fails after an upgrade, the library changed under the gateway: the
message says what the gateway assumed and which code to look at. Do not loosen the test;
adapt that code (or pin the library) and keep the behaviour the test describes.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio
import strawberry
from aiocache import RedisCache, SimpleMemoryCache
from graphql.error import GraphQLError, GraphQLSyntaxError
from redis import Redis
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionResult

from app.cache import BoundedMemoryCache, CurrentRedisCache, build_backend
from app.errors import RecordingNotFoundError
from app.models import Provider
from app.schema import GatewaySchema, schema
from app.schema.errors import VARIABLE_COERCION_PREFIX, ErrorCodes, report
from app.settings import Settings

pytestmark = pytest.mark.anyio

RECORDING = "query Q($p: Provider!, $id: ID!) { recording(provider: $p, id: $id) { id } }"


async def errors_of(query: str, variables: dict[str, Any] | None = None) -> list[GraphQLError]:
    """The errors of ``query`` through the gateway's own schema (no resolver runs: all of
    these fail before execution reaches a field)."""
    result = await schema.execute(query, variable_values=variables)
    assert result.errors, result
    return result.errors


def code_of(error: GraphQLError) -> str:
    return str((error.extensions or {}).get("code"))


# --- graphql-core: what its errors are ---------------------------------------------------


@pytest.mark.parametrize(
    "query", ["{ recording(provider: TWILIO", "query {", "}", "{ a: }", "{ ... }"]
)
async def test_graphql_core_raises_GraphQLSyntaxError_for_a_parse_error(query: str) -> None:
    # Twice: the second parse is answered by Strawberry's ParserCache.
    for _ in range(2):
        (error,) = await errors_of(query)
        assert isinstance(error, GraphQLSyntaxError), (
            f"graphql-core reported a parse error as {type(error).__name__}, not "
            "GraphQLSyntaxError: app/schema/errors.py _code_for knows parse errors by that class"
        )
        assert error.message.startswith("Syntax Error")
        assert code_of(error) == "GRAPHQL_PARSE_FAILED"


@pytest.mark.parametrize(
    "variables",
    [
        {"p": "ACME", "id": "x"},  # not a member of the enum
        {"p": "TWILIO"},  # a required variable missing
        {"p": "TWILIO", "id": None},  # null for a non-null type
        {"p": "TWILIO", "id": {"an": "object"}},  # not an ID at all
        {"p": ["TWILIO"], "id": "x"},
    ],
)
async def test_graphql_core_words_variable_coercion_errors_with_the_prefix(
    variables: dict[str, Any],
) -> None:
    for error in await errors_of(RECORDING, variables):
        assert error.message.startswith(VARIABLE_COERCION_PREFIX), (
            f"graphql-core's coerce_variable_values now words its errors as {error.message!r}: "
            "update VARIABLE_COERCION_PREFIX in app/schema/errors.py, which is how those "
            "errors get BAD_USER_INPUT"
        )
        assert code_of(error) == "BAD_USER_INPUT"


# --- Strawberry: the extension hooks ErrorCodes uses ----------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "query Q($x: Int) { __typename }",  # "Variable '$x' is never used ..."
        "query Q { recording(provider: TWILIO, id: $y) { id } }",  # "... is not defined ..."
        'query Q($p: String) { recording(provider: $p, id: "x") { id } }',  # wrong position
        "{ recording(provider: TWILIO, id: 1) { nope } }",
    ],
)
async def test_on_validate_sees_every_validation_error(query: str) -> None:
    # Twice: the second validation is answered by Strawberry's ValidationCache.
    for _ in range(2):
        for error in await errors_of(query):
            assert code_of(error) == "GRAPHQL_VALIDATION_FAILED", (
                f"{error.message!r} got {code_of(error)}: ErrorCodes.on_validate "
                "(app/schema/errors.py) expects Strawberry to run on_validate around "
                "validation, with its errors in execution_context.pre_execution_errors"
            )


@dataclass
class ProbeContext:
    reported_errors: list[GraphQLError] = field(default_factory=list)


@strawberry.type
class ProbeQuery:
    @strawberry.field
    def partial(self, info: strawberry.Info[Any, None]) -> str:
        report(info, RecordingNotFoundError("one provider has none", provider=Provider.BIRD))
        # An unexpected error reported the same way must be masked like any other.
        info.context.reported_errors.append(
            GraphQLError("secret detail", path=info.path.as_list(), original_error=KeyError())
        )
        return "the rest"

    @strawberry.field
    def explode(self) -> str | None:
        raise ValueError("secret detail")


async def test_mask_errors_shapes_what_on_execute_adds() -> None:
    probe = GatewaySchema(query=ProbeQuery, extensions=[ErrorCodes])
    result = await probe.execute("{ partial explode }", context_value=ProbeContext())
    assert result.data == {"partial": "the rest", "explode": None}
    shaped = {(error.message, code_of(error)) for error in result.errors or []}
    assert ("one provider has none", "NOT_FOUND") in shaped
    assert len(result.errors or []) == 3
    assert shaped - {("one provider has none", "NOT_FOUND")} == {
        ("Internal server error.", "INTERNAL_SERVER_ERROR")
    }, (
        f"{shaped}: ErrorCodes adds reported errors in on_execute and relies on MaskErrors "
        "masking when on_operation ends, after on_execute (app/schema/errors.py)"
    )
    assert "secret detail" not in str(result.errors)


def test_mask_errors_masks_once_its_operation_is_over() -> None:
    """MaskErrors.on_operation: a generator that yields exactly once and masks the result's
    errors after that yield (ErrorCodes' other hooks run inside it)."""
    assert inspect.isgeneratorfunction(MaskErrors.on_operation)
    masking = MaskErrors(error_message="masked")
    result = ExecutionResult(data=None, errors=[GraphQLError("secret detail")])
    masking.execution_context = type("Context", (), {"result": result})()
    hook = masking.on_operation()
    assert next(hook) is None
    assert result.errors is not None and result.errors[0].message == "secret detail"
    assert next(hook, "done") == "done", "MaskErrors.on_operation yields more than once"
    assert [error.message for error in result.errors or []] == ["masked"], (
        "MaskErrors no longer masks the result when on_operation resumes after its yield"
    )


# --- aiocache: the private methods BoundedMemoryCache and CurrentRedisCache override ------


class Recorder:
    """Notes which private method each public call of a cache went through."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []


class RecordingMemoryCache(SimpleMemoryCache):  # type: ignore[misc]
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        self.recorder.calls.append(("_get", {"key": key}))
        return await super()._get(key, encoding=encoding, _conn=_conn)

    async def _set(self, key: str, value: Any, ttl: Any = None, **kwargs: Any) -> Any:
        self.recorder.calls.append(("_set", {"key": key, "ttl": ttl, **kwargs}))
        return await super()._set(key, value, ttl=ttl, **kwargs)

    async def _delete(self, key: str, _conn: Any = None) -> Any:
        self.recorder.calls.append(("_delete", {"key": key}))
        return await super()._delete(key, _conn=_conn)


async def test_aiocache_public_calls_go_through_the_private_methods() -> None:
    recorder = Recorder()
    cache = RecordingMemoryCache(recorder)
    await cache.set("k", "v", ttl=60)
    assert await cache.get("k") == "v"
    await cache.delete("k")
    names = [name for name, _ in recorder.calls]
    assert names == ["_set", "_get", "_delete"], (
        f"aiocache's set/get/delete now call {names}: BoundedMemoryCache (app/cache.py) "
        "keeps its LRU order in _get and _set and evicts with _delete"
    )
    assert recorder.calls[0][1]["ttl"] == 60, "aiocache no longer passes ttl to _set by name"


async def test_aiocache_memory_cache_keeps_its_entries_in__cache() -> None:
    cache = SimpleMemoryCache()
    await cache.set("a", "1")
    await cache.set("b", "2")
    assert getattr(cache, "_cache", None) == {"a": "1", "b": "2"}, (
        "aiocache's SimpleMemoryCache no longer keeps its entries in the dict `_cache`, in "
        "insertion order: BoundedMemoryCache (app/cache.py) orders and evicts through it"
    )
    await cache.delete("a")
    assert cache._cache == {"b": "2"}


async def test_bounded_memory_cache_evicts_least_recently_used_with_ttls() -> None:
    cache = BoundedMemoryCache(2)
    await cache.set("a", "1", ttl=3600)
    await cache.set("b", "2", ttl=3600)
    assert await cache.get("a") == "1"  # "b" is now the least recently used
    await cache.set("c", "3", ttl=3600)
    assert [await cache.get(key) for key in ("a", "b", "c")] == ["1", None, "3"]
    await cache.set("b", "again", ttl=3600)  # evicts "a": "c" was read after it
    assert [await cache.get(key) for key in ("a", "b", "c")] == [None, "again", "3"]
    assert await cache.exists("b") and not await cache.exists("a")


async def test_current_redis_cache_against_a_real_redis(redis_proc: Any, redisdb: Redis) -> None:
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    cache = build_backend(Settings.from_env({"GATEWAY_CACHE_URL": url}).cache)
    assert isinstance(cache, CurrentRedisCache)
    assert isinstance(cache.client, redis.asyncio.Redis), (
        "aiocache's RedisCache no longer exposes its redis-py client as `client`: "
        "CurrentRedisCache (app/cache.py) sets and closes through it"
    )
    # With -W error, a deprecated redis-py call (setex, close) fails here.
    await cache.set("with-ttl", "v", ttl=30)
    await cache.set("no-ttl", "w")
    await cache.set("float-ttl", "x", ttl=1.5)  # aiocache's own path: psetex
    assert [await cache.get(key) for key in ("with-ttl", "no-ttl", "float-ttl")] == ["v", "w", "x"]
    assert 0 < redisdb.ttl("with-ttl") <= 30
    assert redisdb.ttl("no-ttl") == -1
    assert 0 < redisdb.pttl("float-ttl") <= 1500
    await cache.close()
    assert redisdb.get("with-ttl") == b"v"


async def test_aiocache_without_a_timeout_runs_each_call_in_the_callers_task() -> None:
    """aiocache documents ``timeout=None`` (or 0) as "no timeout"; with one, it wraps each call
    in ``asyncio.wait_for``, which on Python 3.11 runs it in a task of its own."""
    seen: list[asyncio.Task[Any] | None] = []

    class Probe(SimpleMemoryCache):  # type: ignore[misc]
        async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
            seen.append(asyncio.current_task())
            return None

    await Probe(timeout=None).get("k")
    assert seen == [asyncio.current_task()], (
        "aiocache now runs a call with timeout=None in another task: build_backend "
        "(app/cache.py) passes timeout=None so that no per-get asyncio.wait_for is paid"
    )
    await Probe(timeout=5).get("k")
    assert seen[-1] is not asyncio.current_task(), (
        "aiocache no longer uses wait_for: the test's premise changed"
    )


@pytest.mark.parametrize("url", ["memory://", "redis://127.0.0.1:6399/0"])
def test_cache_backends_have_no_aiocache_timeout_and_redis_has_socket_timeouts(url: str) -> None:
    """The Redis client's own socket timeouts replace aiocache's ``wait_for``: aiocache 0.12
    hands ``connection_pool_kwargs`` and ``create_connection_timeout`` to redis-py's pool."""
    settings = Settings.from_env({"GATEWAY_CACHE_URL": url, "GATEWAY_CACHE_TIMEOUT": "0.3"}).cache
    cache = build_backend(settings)
    assert cache is not None and cache.timeout is None, (
        "an aiocache timeout means a wait_for per call"
    )
    if isinstance(cache, CurrentRedisCache):
        kwargs = cache.client.connection_pool.connection_kwargs
        assert (kwargs.get("socket_timeout"), kwargs.get("socket_connect_timeout")) == (0.3, 0.3), (
            "aiocache no longer passes connection_pool_kwargs / create_connection_timeout to "
            f"redis-py's ConnectionPool ({kwargs}): a frozen Redis would hang the cache"
        )


async def test_aiocache_redis_still_needs_current_redis_cache(
    redis_proc: Any, redisdb: Redis
) -> None:
    """Why CurrentRedisCache exists: aiocache 0.12 calls redis-py's deprecated setex and
    close. When this fails, aiocache stopped doing so and CurrentRedisCache can go."""
    cache = RedisCache(endpoint=redis_proc.host, port=redis_proc.port)
    with pytest.warns(DeprecationWarning, match="setex"):
        await cache.set("k", "v", ttl=30)
    with pytest.warns(DeprecationWarning, match="close"):
        await cache.close()
    assert inspect.signature(RedisCache._set).parameters.keys() >= {"key", "value", "ttl"}


@strawberry.type
class CountingQuery:
    calls: strawberry.Private[list[int]] = field(default_factory=list)

    @strawberry.field
    def hello(self, info: strawberry.Info) -> str:
        info.context.append(1)
        return "hi"


async def test_an_extension_that_sets_the_result_stops_execution() -> None:
    """app/schema/budget.py refuses a request by setting ``execution_context.result`` in
    on_execute before its yield: Strawberry must then return it and run no resolver."""
    from graphql import ExecutionResult as GraphQLResult
    from strawberry.extensions import SchemaExtension

    class Refuse(SchemaExtension):
        def on_execute(self) -> Any:
            self.execution_context.result = GraphQLResult(
                data=None, errors=[GraphQLError("refused")]
            )
            yield

    calls: list[int] = []
    probe = GatewaySchema(query=CountingQuery, extensions=[Refuse])
    result = await probe.execute("{ hello }", context_value=calls)
    assert calls == [], "Strawberry ran resolvers although an extension had set the result"
    assert [error.message for error in result.errors or []] == ["refused"]


async def test_parse_options_reach_graphql_core_parse() -> None:
    """app/schema/documents.py puts max_tokens and allow_empty_selection_sets in the
    execution context's parse_options: Strawberry must hand them to graphql-core's parse."""
    from app.schema.documents import CachedDocuments, DocumentCache

    probe = GatewaySchema(
        query=CountingQuery,
        extensions=[lambda: CachedDocuments(DocumentCache(), max_tokens=5)],
    )
    result = await probe.execute("{ }", context_value=[])
    assert result.errors and "Expected Name" in result.errors[0].message, (
        "an empty selection set was parsed: allow_empty_selection_sets=False did not reach parse"
    )
    result = await probe.execute("{ a: hello b: hello }", context_value=[])
    assert result.errors and "more than 5 tokens" in result.errors[0].message
