"""The store of APQ query texts: in memory (bounded by characters, least recently used
out) and in Redis (shared, with a TTL; a Redis that fails is "not found", logged once); and
what the resolver stores and trusts of it."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from redis import Redis

from app.cache import build_backend
from app.errors import PersistedQueryNotFoundError
from app.persisted import PersistedQueries
from app.persisted.manifest import sha256_of
from app.persisted.store import TTL, BackendQueryStore, MemoryQueryStore, build_store, key
from app.settings import CacheSettings

pytestmark = pytest.mark.anyio

HASH = "a" * 64


def test_keys_name_the_tenant_as_a_digest_and_the_hash() -> None:
    one, other = key("acme", HASH), key("globex", HASH)
    assert one.startswith("rg:apq:") and one.endswith(f":{HASH}")
    assert one != other and "acme" not in one
    assert key("acme", HASH) == one


async def test_memory_store_round_trip_and_replacement() -> None:
    store = MemoryQueryStore()
    assert await store.get("k") is None
    await store.put("k", "{ a }")
    await store.put("k", "{ bb }")
    assert await store.get("k") == "{ bb }"
    assert len(store) == 1 and store.chars == len("{ bb }")


async def test_memory_store_drops_the_least_recently_used_past_its_characters() -> None:
    store = MemoryQueryStore(max_chars=30)
    for name in "abc":
        await store.put(name, name * 10)
    assert await store.get("a") == "a" * 10  # now the most recently used
    await store.put("d", "d" * 10)
    assert await store.get("b") is None
    assert [await store.get(n) for n in "acd"] == ["a" * 10, "c" * 10, "d" * 10]
    assert store.chars == 30


async def test_memory_store_bounds_entries_and_skips_a_text_over_the_bound() -> None:
    store = MemoryQueryStore(max_chars=100, max_entries=2)
    await store.put("huge", "x" * 101)
    assert await store.get("huge") is None and store.chars == 0
    for name in "abc":
        await store.put(name, name)
    assert len(store) == 2 and await store.get("a") is None


def test_the_backend_follows_the_cache_url() -> None:
    assert isinstance(build_store(CacheSettings(kind="memory")), MemoryQueryStore)
    assert isinstance(build_store(CacheSettings(kind="none")), MemoryQueryStore)
    redis = build_store(CacheSettings(kind="redis", host="127.0.0.1"))
    assert isinstance(redis, BackendQueryStore)


async def test_redis_store_round_trip_with_a_ttl(redis_proc: Any, redisdb: Redis) -> None:
    # A second per call, not the production 0.1 s: a slow first call on a busy machine would
    # be taken for a store that does not answer.
    settings = CacheSettings(kind="redis", host=redis_proc.host, port=redis_proc.port, timeout=1)
    store = build_store(settings)
    try:
        name = key("acme", HASH)
        await store.put(name, "query { é }")
        assert await store.get(name) == "query { é }"
        assert await store.get(key("globex", HASH)) is None
        assert 0 < redisdb.ttl(name) <= TTL
    finally:
        await store.aclose()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_redis_that_does_not_answer_is_not_found_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = CacheSettings(kind="redis", host="127.0.0.1", port=closed_port())
    store = BackendQueryStore(build_backend(settings, timeout=0.5))
    try:
        with caplog.at_level(logging.WARNING, logger="app.persisted"):
            await store.put("k", "{ a }")
            assert await store.get("k") is None
            assert await store.get("k") is None
    finally:
        await store.aclose()
    warnings = [r for r in caplog.records if r.name == "app.persisted"]
    assert [r.getMessage() for r in warnings] == [
        "persisted-query store unavailable (ConnectionError); hashes are not found until it is back"
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_a_text_over_the_body_limit_is_run_but_not_stored() -> None:
    store = MemoryQueryStore()
    resolver = PersistedQueries("apq", store, max_bytes=40)
    short, long = "{ __typename }", "query Long { __typename " + "a: __typename " * 3 + "}"
    for text in (short, long):
        request = {
            "query": text,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_of(text)}},
        }
        assert await resolver.resolve(request, "acme") == text
    assert len(store) == 1
    hashed = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_of(long)}}}
    with pytest.raises(PersistedQueryNotFoundError):
        await resolver.resolve(hashed, "acme")


async def test_a_stored_text_that_is_not_its_hashs_is_not_found(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A shared Redis is read, not trusted: an entry for a hash holds that hash's query."""
    store = MemoryQueryStore()
    resolver = PersistedQueries("apq", store)
    wanted = sha256_of("{ __typename }")
    await store.put(key("acme", wanted), "{ somethingElse }")
    hashed = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": wanted}}}
    with caplog.at_level(logging.WARNING), pytest.raises(PersistedQueryNotFoundError):
        await resolver.resolve(hashed, "acme")
    assert "does not match its hash" in caplog.text
