"""The parse and validation cache holds a bounded amount of memory, whatever the documents."""

from __future__ import annotations

import gc
import tracemalloc

import graphql

from app.schema.documents import Document, DocumentCache


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
