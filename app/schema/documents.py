"""Parsed and validated documents, kept by query text and bounded by their total size.

The same few queries arrive over and over: each is parsed and validated once. Strawberry's
own ``ParserCache`` and ``ValidationCache`` bound their entries by count only, and an
entry's memory grows with its document: about 250-600 bytes per token, so a query of 2,000
tokens holds 0.5-1.2 MB of nodes and tokens, even one of 6 KB (``id id id ...``). 512
distinct queries could hold hundreds of megabytes for good. This cache counts the
characters of the query texts it holds instead, and drops the least recently used entries
past ``max_chars`` or ``max_entries``. At most ~200 bytes a character (that 6 KB query),
128 KiB of text is at most ~26 MB of documents, and a few hundred of the queries clients
write. (With 1 MiB, 1,000 distinct 6 KB queries left the gateway at 322 MB, and at 706 MB
with the garbage collector's settings before issue 11: tests/perf/README.md.)

Parse options are set here too: graphql-core stops parsing at ``max_tokens`` (so no
accepted document costs more than a few milliseconds to parse) and refuses empty selection
sets (``{ }``), which graphql-core 3.3 otherwise accepts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension

from app.schema.validation import expanded_selections

#: How many selections a document may expand to, per token it may have.
EXPANSION_PER_TOKEN = 5


@dataclass(frozen=True)
class Document:
    """A parsed query and what validation found in it (nothing, for a valid one)."""

    node: DocumentNode
    errors: tuple[GraphQLError, ...]


class DocumentCache:
    """Least recently used documents, by query text, within ``max_chars`` of text."""

    def __init__(self, max_chars: int = 2**17, max_entries: int = 512) -> None:
        self.max_chars = max_chars
        self.max_entries = max_entries
        self.chars = 0
        self._entries: OrderedDict[str, Document] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str) -> Document | None:
        found = self._entries.get(query)
        if found is not None:
            self._entries.move_to_end(query)
        return found

    def put(self, query: str, document: Document) -> None:
        if len(query) > self.max_chars or query in self._entries:
            return
        self._entries[query] = document
        self.chars += len(query)
        while self.chars > self.max_chars or len(self._entries) > self.max_entries:
            dropped, _ = self._entries.popitem(last=False)
            self.chars -= len(dropped)


class CachedDocuments(SchemaExtension):
    """Parses and validates through a ``DocumentCache``, with the gateway's parse limits;
    a document too large once its fragments are expanded is refused before validation
    (``app.schema.validation``)."""

    def __init__(self, cache: DocumentCache, *, max_tokens: int) -> None:
        super().__init__()
        self.cache = cache
        self.max_tokens = max_tokens
        self.max_expanded = EXPANSION_PER_TOKEN * max_tokens
        self._hit: Document | None = None

    def on_operation(self) -> Iterator[None]:
        # Strawberry hands these to graphql-core's ``parse`` as keyword arguments (its
        # ParseOptions type names only max_tokens; tests/test_library_contracts.py checks).
        options = cast(dict[str, Any], self.execution_context.parse_options)
        options.update(max_tokens=self.max_tokens, allow_empty_selection_sets=False)
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            self._hit = self.cache.get(context.query)
            if self._hit is not None:
                context.graphql_document = self._hit.node
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        # Strawberry validates only while no errors are set: a hit, or a refusal, skips it.
        if self._hit is not None:
            context.pre_execution_errors = list(self._hit.errors)
        elif context.graphql_document is not None:
            limit = self.max_expanded
            if expanded_selections(context.graphql_document, limit + 1) > limit:
                message = f"more than {limit} selections once fragments are expanded"
                context.pre_execution_errors = [GraphQLError(f"The document has {message}.")]
        yield
        if self._hit is None and context.query and context.graphql_document is not None:
            errors = tuple(context.pre_execution_errors or ())
            self.cache.put(context.query, Document(context.graphql_document, errors))
