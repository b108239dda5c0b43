"""Validation cannot stall the gateway: fragment expansion is counted before validation, and
graphql-core's overlap check works within a lowered budget (``app.schema.validation``)."""

from __future__ import annotations

import graphql
import httpx
import pytest
from graphql.validation.rules import overlapping_fields_can_be_merged

from app.sandbox import Sandbox
from app.schema import build_schema
from app.schema.validation import OVERLAP_BUDGET, expanded_selections
from app.settings import RequestLimits
from tests.support import RECORDING_FIELDS
from tests.support import graphql as post

pytestmark = pytest.mark.anyio

ONE = 'recording(provider: TWILIO, id: "RE00000000000000000000000000000000")'


def ladder(levels: int, leaf: str = "id") -> str:
    """Each fragment spreads the next twice: 2**levels leaves once expanded, in a document
    of a few hundred tokens, depth 1 and cost 1."""
    fragments = " ".join(
        f"fragment F{i} on Recording {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"{{ {ONE} {{ ...F0 }} }} {fragments} fragment F{levels} on Recording {{ {leaf} }}"


def count(query: str, cap: int = 10**9) -> int:
    return expanded_selections(graphql.parse(query), cap)


def test_selections_are_counted_as_if_every_fragment_were_expanded() -> None:
    assert count("{ a b { c d { e } } }") == 5
    assert count("{ a ...F ... on Query { b } } fragment F on Query { c { d } }") == 6
    assert count("{ ...F ...F } fragment F on Query { a b }") == 6
    assert count("query A { a } query B { ...F } fragment F on Query { b }") == 3
    assert count("{ a } fragment Unused on Query { b c }") == 1
    assert count(ladder(3)) == 1 + 1 + (2 + 2 * (2 + 2 * (2 + 2 * 1)))


def test_a_ladder_of_fragments_is_counted_without_expanding_it() -> None:
    assert count(ladder(60), cap=2**70) == 3 * 2**60  # the recording, 2**60 leaves, spreads
    assert count(ladder(60), cap=10_000) == 10_000


def test_cycles_and_undefined_fragments_end() -> None:
    assert count("{ ...A } fragment A on Query { a ...B } fragment B on Query { b ...A }") == 5
    assert count("{ ...A } fragment A on Query { ...A }") == 2
    assert count("{ ...Missing x }") == 2


def test_a_long_chain_of_fragments_needs_no_recursion() -> None:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(5000))
    assert count("{ ...F0 } " + chain + " fragment F5000 on Query { a }") == 5002


async def test_a_ladder_of_fragments_is_refused_before_validation(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """Strawberry's depth and alias rules walk a fragment at every spread: this 20-level
    ladder (depth 1, no alias, cost 1) took them seconds."""
    body = await post(gateway, ladder(20))
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["message"] == (
        "The document has more than 10000 selections once fragments are expanded."
    )
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert sandbox.requests == []


async def test_fragments_reused_as_clients_do_are_accepted(gateway: httpx.AsyncClient) -> None:
    aliases = " ".join(f"r{i}: {ONE} {{ ...Every }}" for i in range(100))
    query = f"{{ {aliases} }} fragment Every on Recording {{ {RECORDING_FIELDS} }}"
    assert count(query) < 10_000
    body = await post(gateway, query)
    assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["NOT_FOUND"] * 100


async def test_many_fields_of_one_name_end_the_overlap_check_early(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """400 x ``price { amount }``: 399,000 units of graphql-core's overlap check (0.6 s),
    valid under its own budget, refused under the gateway's."""
    body = await post(gateway, f"{{ {ONE} {{ {'price { amount } ' * 400} }} }}")
    assert body["errors"] == [
        {"message": "Validation aborted.", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
    ]
    assert sandbox.requests == []
    body = await post(gateway, f"{{ {ONE} {{ {'price { amount } ' * 50} }} }}")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


def test_graphql_core_reads_its_overlap_budget_when_validation_starts() -> None:
    """The knob ``bound_overlap_checks`` turns: graphql-core's module attribute, read anew by
    each validation (graphql-core documents it so)."""
    schema = build_schema(RequestLimits())._schema
    document = graphql.parse(f"{{ {ONE} {{ {'price { amount } ' * 100} }} }}")  # 24,750 units
    assert overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET == OVERLAP_BUDGET
    assert [e.message for e in graphql.validate(schema, document)] == ["Validation aborted."]
    try:
        overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = 500_000
        assert graphql.validate(schema, document) == []
    finally:
        overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = OVERLAP_BUDGET
