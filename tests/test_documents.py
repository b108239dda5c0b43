"""The document cache: bounded by the size of what it holds (so by a bounded amount of
memory, whatever the documents), and a hit skips parse and validation."""

from __future__ import annotations

import gc
import tracemalloc

import graphql
import pytest
from graphql import parse

from app.schema import build_schema
from app.schema.documents import Document, DocumentCache
from app.settings import RequestLimits

pytestmark = pytest.mark.anyio


def document(query: str) -> Document:
    return Document(parse(query), ())


def test_the_cache_is_bounded_by_the_characters_it_holds() -> None:
    cache = DocumentCache(max_chars=100, max_entries=1000)
    queries = [f"{{ a{n}: __typename {' ' * 30}}}" for n in range(10)]  # 48 characters each
    for query in queries:
        cache.put(query, document(query))
    assert len(cache) == 2 and cache.chars <= 100
    assert cache.get(queries[-1]) is not None and cache.get(queries[0]) is None


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = DocumentCache(max_chars=10_000, max_entries=2)
    first, second, third = "{ a }", "{ b }", "{ c }"
    cache.put(first, document(first))
    cache.put(second, document(second))
    assert cache.get(first) is not None  # now the most recently used
    cache.put(third, document(third))
    assert cache.get(second) is None and cache.get(first) is not None


def test_a_query_larger_than_the_whole_cache_is_not_kept() -> None:
    cache = DocumentCache(max_chars=10)
    query = "{ __typename }"
    cache.put(query, document(query))
    assert len(cache) == 0 and cache.chars == 0


async def test_a_hit_reuses_the_parsed_document_and_its_validation() -> None:
    schema = build_schema(RequestLimits(introspection=True), budget=False)
    valid, invalid = "{ __typename }", "{ nope }"
    for _ in range(2):
        assert (await schema.execute(valid)).data == {"__typename": "Query"}
        result = await schema.execute(invalid)
        assert result.errors and result.errors[0].extensions == {
            "code": "GRAPHQL_VALIDATION_FAILED"
        }


def dense(n: int) -> str:
    """2,000 tokens in 6 KB: the most memory per character of query text (~200 bytes)."""
    return f'query Q{n} {{ recording(provider: TWILIO, id: "x") {{ {"id " * 1985}}} }}'


def test_the_default_cache_holds_at_most_tens_of_megabytes_of_the_densest_documents() -> None:
    cache = DocumentCache()
    gc.collect()
    tracemalloc.start()
    try:
        for n in range(40):
            query = dense(n)
            cache.put(query, Document(graphql.parse(query, max_tokens=2000), ()))
        gc.collect()  # the evicted documents: their tokens link both ways (a cycle)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < len(cache) < 40
    assert held < 32 * 2**20, f"{held / 2**20:.0f} MB for {len(cache)} documents"


def test_least_recently_used_entries_go_first_past_the_character_bound() -> None:
    cache = DocumentCache(max_chars=10, max_entries=3)
    empty = Document(graphql.parse("{ a }"), ())
    for query in ("aaaa", "bbbb"):
        cache.put(query, empty)
    assert cache.get("aaaa") is empty  # now the most recently used
    cache.put("cccc", empty)
    assert (cache.get("aaaa"), cache.get("bbbb"), cache.get("cccc")) == (empty, None, empty)
    assert cache.chars == 8
    cache.put("x" * 11, empty)  # larger than the whole cache: not kept
    assert len(cache) == 2
