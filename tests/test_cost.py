"""The cost estimate: exact numbers for every rule, checked against GraphQL's own execution.

Each case in CASES is asserted twice: ``estimate`` gives its number, and graphql-core,
executing the same document over the exported schema with resolvers that count what they
are asked for (1 per recording, per ref, ``first`` x providers per listing, 1 per media link)
and return the largest answer allowed (``first`` recordings a page), counts the same. So the
estimate follows GraphQL's semantics for fragments, aliases, directives and variables, not
merely this file's reading of them. Hostile and ill-typed documents, which do not execute,
are tested against the estimate alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import graphql
import pytest
from graphql.language import ast
from hypothesis import given, settings
from hypothesis import strategies as st

from app.schema import schema
from app.schema.cost import estimate

PROVIDERS = 3  # configured for the tenant in every test that does not say otherwise
R = 'recording(provider: TWILIO, id: "1")'
REFS2 = '[{provider: TWILIO, id: "1"}, {provider: BIRD, id: "2"}]'
REFS3 = '[{provider: TWILIO, id: "1"}, {provider: BIRD, id: "2"}, {provider: BIRD, id: "3"}]'
REC = "fragment Rec on Recording { mediaUrl media { url } }"


def cost(
    query: str,
    variables: dict[str, Any] | None = None,
    operation: str | None = None,
    **limits: int,
) -> int:
    return estimate(
        graphql.parse(query),
        operation,
        variables,
        providers=limits.pop("providers", PROVIDERS),
        **limits,
    )


@dataclass(frozen=True)
class Case:
    query: str
    expected: int
    variables: dict[str, Any] = field(default_factory=dict)
    operation: str | None = None


CASES = {
    # recording: 1 each, every alias; media links 1 per recording
    "recording": Case(f"{{ {R} {{ id }} }}", 1),
    "two aliases": Case(f"{{ a: {R} {{ id }} b: {R} {{ id }} }}", 2),
    "mediaUrl": Case(f"{{ {R} {{ mediaUrl }} }}", 2),
    "media and mediaUrl": Case(
        f"{{ {R} {{ media {{ url expiresAt }} mediaUrl(format: WAV) }} }}", 3
    ),
    "aliased media": Case(
        f"{{ {R} {{ a: mediaUrl b: mediaUrl(format: WAV) c: media {{ url }} }} }}", 4
    ),
    "typename": Case("{ __typename }", 0),
    "introspection": Case("{ __schema { queryType { name } } }", 0),
    "type lookup": Case(f'{{ __type(name: "Recording") {{ name }} {R} {{ __typename }} }}', 1),
    # recordingsByRef: 1 per ref
    "refs literal": Case(f"{{ recordingsByRef(refs: {REFS3}) {{ id }} }}", 3),
    "refs literal with media": Case(f"{{ recordingsByRef(refs: {REFS3}) {{ mediaUrl }} }}", 6),
    "refs empty": Case("{ recordingsByRef(refs: []) { mediaUrl } }", 0),
    "refs variable": Case(
        "query Q($refs: [RecordingRefInput!]!) "
        "{ recordingsByRef(refs: $refs) { media { url } mediaUrl } }",
        12,
        {"refs": [{"provider": "TWILIO", "id": str(n)} for n in range(4)]},
    ),
    "refs default": Case(
        f"query Q($refs: [RecordingRefInput!]! = {REFS2}) "
        "{ recordingsByRef(refs: $refs) { id } }",
        2,
    ),
    "refs given over default": Case(
        f"query Q($refs: [RecordingRefInput!]! = {REFS2}) "
        "{ recordingsByRef(refs: $refs) { id } }",
        1,
        {"refs": [{"provider": "BIRD", "id": "x"}]},
    ),
    # recordings: first (default 20) x selected providers (default all configured)
    "listing default": Case("{ recordings { pageInfo { hasNextPage } } }", 60),
    "listing first": Case("{ recordings(first: 5) { pageInfo { endCursor } } }", 15),
    "listing first null": Case("{ recordings(first: null) { edges { cursor } } }", 60),
    "listing first 0": Case("{ recordings(first: 0) { nodes { mediaUrl } } }", 0),
    "first variable": Case(
        "query Q($n: Int) { recordings(first: $n) { __typename } }", 21, {"n": 7}
    ),
    "first variable null": Case(
        "query Q($n: Int) { recordings(first: $n) { __typename } }", 60, {"n": None}
    ),
    "first variable absent": Case("query Q($n: Int) { recordings(first: $n) { __typename } }", 60),
    "first default": Case("query Q($n: Int = 4) { recordings(first: $n) { __typename } }", 12),
    "first given over default": Case(
        "query Q($n: Int = 4) { recordings(first: $n) { __typename } }", 6, {"n": 2}
    ),
    "providers literal": Case(
        "{ recordings(filter: {providers: [TWILIO, BIRD]}) { __typename } }", 40
    ),
    "providers repeated": Case(
        "{ recordings(filter: {providers: [TWILIO, TWILIO]}) { __typename } }", 20
    ),
    "providers null": Case("{ recordings(filter: {providers: null}) { __typename } }", 60),
    "filter without providers": Case('{ recordings(filter: {callId: "c"}) { __typename } }', 60),
    "filter null": Case("{ recordings(filter: null) { __typename } }", 60),
    "filter variable": Case(
        "query Q($f: RecordingFilter) { recordings(first: 10, filter: $f) { __typename } }",
        10,
        {"f": {"providers": ["BIRD"]}},
    ),
    "filter variable without providers": Case(
        "query Q($f: RecordingFilter) { recordings(first: 10, filter: $f) { __typename } }",
        30,
        {"f": {"callId": "c"}},
    ),
    "filter variable null": Case(
        "query Q($f: RecordingFilter) { recordings(first: 10, filter: $f) { __typename } }",
        30,
        {"f": None},
    ),
    "filter default": Case(
        "query Q($f: RecordingFilter = {providers: [BIRD, TWILIO]}) "
        "{ recordings(first: 10, filter: $f) { __typename } }",
        20,
    ),
    "providers variable": Case(
        "query Q($p: [Provider!]) "
        "{ recordings(first: 10, filter: {providers: $p}) { __typename } }",
        20,
        {"p": ["TWILIO", "SIGNALWIRE", "TWILIO"]},
    ),
    "provider item variable": Case(
        "query Q($p: Provider!) "
        "{ recordings(first: 10, filter: {providers: [$p, BIRD]}) { __typename } }",
        10,
        {"p": "BIRD"},
    ),
    # media in a listing: x the recordings a page holds (at most first)
    "listing edges media": Case(
        "{ recordings(first: 10) { edges { cursor node { mediaUrl } } } }", 40
    ),
    "listing nodes media": Case(
        "{ recordings(first: 10) { nodes { media { url } mediaUrl } } }", 50
    ),
    "listing edges and nodes": Case(
        "{ recordings(first: 10) { edges { node { mediaUrl } } nodes { mediaUrl } } }", 50
    ),
    "listing one provider media": Case(
        "{ recordings(first: 10, filter: {providers: [BIRD]}) { nodes { mediaUrl } } }", 20
    ),
    # fragments: named, inline, nested, reused
    "named fragment": Case(f"{{ {R} {{ ...Rec }} }} {REC}", 3),
    "fragment reused": Case(
        f"{{ a: {R} {{ ...Rec }} b: recordingsByRef(refs: {REFS2}) {{ ...Rec }} "
        "c: recordings(first: 3) { nodes { ...Rec } edges { node { ...Rec } } } } " + REC,
        3 + 6 + 21,
    ),
    "fragments nested": Case(
        "{ recordings(first: 4) { ...Page } } "
        "fragment Page on RecordingConnection { edges { ...Edge } pageInfo { hasNextPage } } "
        "fragment Edge on RecordingEdge { cursor node { ...Rec } } " + REC,
        12 + 8,
    ),
    "inline fragments": Case(
        f"{{ ... on Query {{ {R} {{ ... on Recording {{ mediaUrl }} }} }} }}", 2
    ),
    "inline fragment without type": Case(f"{{ {R} {{ ... {{ ... {{ mediaUrl }} }} }} }}", 2),
    "root fragment": Case(
        f"{{ ...Roots }} fragment Roots on Query {{ x: {R} {{ id }} y: {R} {{ id }} }}", 2
    ),
    # @skip and @include
    "skip true": Case(f"{{ {R} @skip(if: true) {{ mediaUrl }} }}", 0),
    "skip false": Case(f"{{ {R} @skip(if: false) {{ mediaUrl }} }}", 2),
    "include false": Case(f"{{ {R} @include(if: false) {{ mediaUrl }} }}", 0),
    "include true": Case(f"{{ {R} @include(if: true) {{ mediaUrl }} }}", 2),
    "skip false include false": Case(f"{{ {R} @skip(if: false) @include(if: false) {{ id }} }}", 0),
    "skip media": Case(f"{{ {R} {{ mediaUrl @skip(if: true) media {{ url }} }} }}", 2),
    "skip inline fragment": Case(f"{{ {R} {{ id ... @include(if: false) {{ mediaUrl }} }} }}", 1),
    "skip spread": Case(f"{{ {R} {{ id ...Rec @skip(if: true) }} }} {REC}", 1),
    "skip listing": Case(
        "{ recordings(first: 5) "
        "{ nodes @skip(if: true) { mediaUrl } edges { node { mediaUrl } } } }",
        20,
    ),
    "skip variable true": Case(
        f"query Q($s: Boolean!) {{ {R} @skip(if: $s) {{ id }} }}", 0, {"s": True}
    ),
    "skip variable false": Case(
        f"query Q($s: Boolean!) {{ {R} @skip(if: $s) {{ id }} }}", 1, {"s": False}
    ),
    "include variable default": Case(
        f"query Q($i: Boolean = false) {{ {R} @include(if: $i) {{ id }} }}", 0
    ),
    "directive variable in fragment": Case(
        f"query Q($m: Boolean!) {{ {R} {{ ...M }} }} "
        "fragment M on Recording { mediaUrl @include(if: $m) }",
        1,
        {"m": False},
    ),
    # the operation that runs
    "operation A": Case(
        f"query A {{ {R} {{ id }} }} query B {{ a: {R} {{ id }} b: {R} {{ id }} }}",
        1,
        operation="A",
    ),
    "operation B": Case(
        f"query A {{ {R} {{ id }} }} query B {{ a: {R} {{ id }} b: {R} {{ id }} }}",
        2,
        operation="B",
    ),
    "operation defaults": Case(
        "query A($n: Int = 1) { recordings(first: $n) { __typename } } "
        "query B($n: Int = 2) { recordings(first: $n) { __typename } }",
        6,
        operation="B",
    ),
    "the only operation by name": Case(f"query Only {{ {R} {{ id }} }}", 1, operation="Only"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_exact_costs(case: Case) -> None:
    assert cost(case.query, case.variables, case.operation) == case.expected


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_graphql_execution_counts_the_same(case: Case) -> None:
    assert executed(case.query, case.variables, case.operation) == case.expected


def test_the_providers_configured_count_when_none_is_chosen() -> None:
    assert cost("{ recordings { __typename } }", providers=1) == 20
    assert cost("{ recordings(first: 10) { nodes { mediaUrl } } }", providers=2) == 30
    assert cost("{ recordings(filter: {providers: [BIRD]}) { __typename } }", providers=2) == 20


def test_fields_graphql_merges_are_counted_each_time() -> None:
    # An overestimate, which is safe: merging would need field collection across fragments.
    for query, estimated, resolved in (
        (f"{{ {R} {{ mediaUrl }} {R} {{ mediaUrl }} }}", 4, 2),
        (f"{{ {R} {{ ...Rec ...Rec }} }} {REC}", 5, 3),
        (f"{{ {R} {{ mediaUrl mediaUrl }} }}", 3, 2),
    ):
        assert (cost(query), executed(query)) == (estimated, resolved)


def test_no_operation_that_would_run_costs_nothing() -> None:
    two = f"query A {{ {R} {{ id }} }} query B {{ {R} {{ id }} }}"
    assert cost(two) == 0  # graphql-core asks for an operation name
    assert cost(two, operation="C") == 0
    assert cost(f"{{ {R} {{ id }} }}", operation="A") == 0
    assert cost(REC) == 0


def test_unused_fragments_cost_nothing() -> None:
    assert cost(f"{{ {R} {{ id }} }} {REC}") == 1


def test_unknown_fields_cost_nothing_and_are_not_followed() -> None:
    assert cost("{ nope { recording { mediaUrl } } }") == 0
    assert cost("{ mediaUrl media { url } }") == 0
    assert cost(f"{{ {R} {{ nope {{ mediaUrl }} recording {{ id }} }} }}") == 1
    assert (
        cost("{ recordings(first: 2) { mediaUrl node { mediaUrl } pageInfo { mediaUrl } } }") == 6
    )
    assert cost('{ __schema { types { fields { name } } } __type(name: "Query") { name } }') == 0


def test_unreadable_first_counts_as_the_largest_page() -> None:
    query = "query Q($n: Int) { recordings(first: $n) { nodes { mediaUrl } } }"
    for wrong in ("10", 10.5, 10.0, True, [1], {"n": 1}):
        assert cost(query, {"n": wrong}) == 100 * 3 + 100, wrong
    assert cost(query, {"n": "10"}, max_page_size=7) == 7 * 3 + 7
    assert cost('{ recordings(first: "10") { __typename } }') == 300
    assert cost("{ recordings(first: 1.5) { __typename } }") == 300
    assert cost("{ recordings(first: TEN) { __typename } }", max_page_size=50) == 150


def test_first_is_not_clamped_down_and_negative_is_nothing() -> None:
    query = "query Q($n: Int) { recordings(first: $n) { nodes { mediaUrl } } }"
    assert cost(query, {"n": 10**9}) == 3 * 10**9 + 10**9
    assert cost("{ recordings(first: 1000000000) { __typename } }") == 3 * 10**9
    assert cost(query, {"n": -5}) == 0
    assert cost("{ recordings(first: -5) { nodes { mediaUrl } } }") == 0
    # Too long for int() (over 4300 digits); Int is 32-bit, so validation refuses it too.
    huge = "9" * 5000
    assert cost(f"{{ recordings(first: {huge}) {{ __typename }} }}") == 300


def test_unreadable_refs_count_as_the_largest_batch() -> None:
    query = "query Q($refs: [RecordingRefInput!]!) { recordingsByRef(refs: $refs) { mediaUrl } }"
    for wrong in ({"provider": "BIRD", "id": "1"}, "x", None, 3):
        assert cost(query, {"refs": wrong}) == 200, wrong
    assert cost(query) == 200  # required, yet missing
    assert cost(query, {"refs": "x"}, max_batch=5) == 10
    assert cost('{ recordingsByRef(refs: {provider: BIRD, id: "1"}) { id } }') == 100
    assert cost("{ recordingsByRef { id } }") == 100
    # Only the outer list's length is read, however deeply lists nest.
    nested = "[" * 100 + "]" * 100
    assert cost(f"{{ recordingsByRef(refs: [{nested}, {nested}]) {{ id }} }}") == 2


def test_unreadable_providers_count_as_all_configured() -> None:
    query = "query Q($f: RecordingFilter) { recordings(first: 10, filter: $f) { __typename } }"
    assert cost(query, {"f": "x"}) == 30
    assert cost(query, {"f": {"providers": "BIRD"}}) == 30
    assert cost(query, {"f": {"providers": 7}}) == 30
    # Items that name no provider count apart.
    assert cost(query, {"f": {"providers": [{"a": 1}, {"a": 1}, ["b"]]}}) == 30
    assert cost(query, {"f": {"providers": [1, 1]}}) == 20
    assert (
        cost(
            "query Q($p: Provider) "
            "{ recordings(first: 10, filter: {providers: [$p, $p, BIRD]}) { id } }"
        )
        == 30
    )
    assert cost("{ recordings(first: 10, filter: {providers: BIRD}) { __typename } }") == 30
    assert cost('{ recordings(first: 10, filter: "x") { __typename } }') == 30


def test_unreadable_conditions_include() -> None:
    assert cost(f"query Q($s: Boolean) {{ {R} @skip(if: $s) {{ id }} }}") == 1
    assert cost(f"query Q($s: Boolean) {{ {R} @include(if: $s) {{ id }} }}") == 1
    assert cost(f"query Q($s: Boolean) {{ {R} @skip(if: $s) {{ id }} }}", {"s": "true"}) == 1
    assert cost(f"query Q($s: Boolean) {{ {R} @include(if: $s) {{ id }} }}", {"s": 0}) == 1
    assert cost(f'{{ {R} @include(if: "no") {{ id }} }}') == 1
    assert cost(f"{{ {R} @skip {{ id }} }}") == 1
    assert cost(f"{{ {R} @other(if: true) {{ id }} }}") == 1


def test_variables_that_are_not_a_mapping_are_ignored() -> None:
    query = "query Q($n: Int = 2) { recordings(first: $n) { __typename } }"
    assert cost(query, cast(Any, [1, 2])) == 6
    assert cost(query, None) == 6


def test_fragment_cycles_end() -> None:
    cyclic = (
        f"{{ {R} {{ ...A }} }} "
        "fragment A on Recording { mediaUrl ...B } fragment B on Recording { mediaUrl ...A }"
    )
    assert cost(cyclic) == 1 + 2  # B's spread of A, which closes the cycle, adds 0
    assert cost(f"{{ {R} {{ ...A }} }} fragment A on Recording {{ mediaUrl ...A ...A }}") == 2
    assert cost(f"{{ ...A }} fragment A on Query {{ {R} {{ id }} ...A }}") == 1
    assert cost("{ ...A } fragment A on Query { ...A }") == 0


def test_spreads_of_undefined_fragments_cost_nothing() -> None:
    assert cost(f"{{ {R} {{ ...Nope mediaUrl }} ...Nope }}") == 2


def test_a_fragment_spread_in_two_places_costs_what_each_place_makes_of_it() -> None:
    # Not valid GraphQL (the type condition fits one place), but read where it is spread.
    query = (
        f"{{ {R} {{ ...Both }} recordings(first: 2) {{ ...Both }} }} "
        "fragment Both on Recording { mediaUrl nodes { mediaUrl } }"
    )
    assert cost(query) == (1 + 1) + (6 + 2)


def test_fragments_reused_at_every_level_cost_exactly_without_blowing_up() -> None:
    # Ten levels, each spreading the previous twice: 2**10 paths to one recording field.
    levels = [f"fragment F0 on Query {{ {R} {{ id }} }}"]
    levels += [f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 11)]
    assert cost("{ ...F10 } " + " ".join(levels)) == 2**10

    # Sixty levels under a listing: 2**60 paths, which no walk along them would finish.
    levels = ["fragment M0 on Recording { mediaUrl }"]
    levels += [f"fragment M{n} on Recording {{ ...M{n - 1} ...M{n - 1} }}" for n in range(1, 61)]
    query = "{ recordings(first: 10) { nodes { ...M60 } } } " + " ".join(levels)
    assert cost(query) == 30 + 10 * 2**60

    # Within the 2000-token limit: five levels, each spreading the previous 100 times.
    levels = [f"fragment H0 on Query {{ {R} {{ id }} }}"]
    levels += [f"fragment H{n} on Query {{ {f' ...H{n - 1}' * 100} }}" for n in range(1, 6)]
    document = graphql.parse("{ ...H5 } " + " ".join(levels), max_tokens=2000)
    assert estimate(document, None, None, providers=3) == 100**5


def test_no_recursion_on_the_document() -> None:
    chain = [f"fragment F{n} on Recording {{ ...F{n + 1} }}" for n in range(5000)]
    chain.append("fragment F5000 on Recording { mediaUrl }")
    assert cost(f"{{ {R} {{ ...F0 }} }} " + " ".join(chain)) == 2

    # Nested deeper than the parser would go: built as a syntax tree.
    selection: ast.SelectionNode = ast.FieldNode(
        name=ast.NameNode(value="recording"),
        selection_set=ast.SelectionSetNode(
            selections=(ast.FieldNode(name=ast.NameNode(value="mediaUrl")),)
        ),
    )
    for _ in range(5_000):
        selection = ast.InlineFragmentNode(
            selection_set=ast.SelectionSetNode(selections=(selection,))
        )
    operation = ast.OperationDefinitionNode(
        operation=ast.OperationType.QUERY,
        selection_set=ast.SelectionSetNode(selections=(selection,)),
    )
    document = ast.DocumentNode(definitions=(operation,))
    assert estimate(document, None, None, providers=3) == 2


# Random valid documents (every response key distinct, so GraphQL merges nothing) cost
# exactly what their execution resolves.


@st.composite
def documents(draw: st.DrawFn) -> str:
    keys = iter(range(10**6))

    def alias() -> str:
        return f"k{next(keys)}: "

    def condition() -> str:
        return draw(
            st.sampled_from(
                [
                    "",
                    "",
                    "@skip(if: true)",
                    "@skip(if: false)",
                    "@include(if: $yes)",
                    "@include(if: $no)",
                ]
            )
        )

    def recording_selection(depth: int, spread: list[bool]) -> str:
        # Rec is spread at most once where a recording's fields are collected (its
        # selection and the inline fragments in it): graphql-core would merge a second.
        items = ["id"]
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["mediaUrl", "media", "inline", "spread"]))
            if kind == "mediaUrl":
                items.append(f"{alias()}mediaUrl {condition()}")
            elif kind == "media":
                items.append(f"{alias()}media {condition()} {{ url }}")
            elif kind == "inline" and depth < 2:
                inline = recording_selection(depth + 1, spread)
                items.append(f"... on Recording {condition()} {{ {inline} }}")
            elif kind == "spread" and not spread:
                spread.append(True)
                items.append(f"...Rec {condition()}")
        return " ".join(items)

    roots = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["recording", "byRef", "listing"]))
        inner = recording_selection(0, [])
        if kind == "recording":
            roots.append(f"{alias()}{R} {condition()} {{ {inner} }}")
        elif kind == "byRef":
            refs = ", ".join(
                f'{{provider: BIRD, id: "{n}"}}' for n in range(draw(st.integers(0, 3)))
            )
            roots.append(f"{alias()}recordingsByRef(refs: [{refs}]) {condition()} {{ {inner} }}")
        else:
            first = draw(st.integers(0, 4))
            chosen = draw(st.lists(st.sampled_from(["TWILIO", "SIGNALWIRE", "BIRD"]), max_size=4))
            filter_ = f"filter: {{providers: [{', '.join(chosen)}]}}" if chosen else ""
            parts = []
            if draw(st.booleans()):
                parts.append(f"{alias()}nodes {condition()} {{ {inner} }}")
            if draw(st.booleans()):
                parts.append(
                    f"{alias()}edges {{ cursor node {condition()} "
                    f"{{ {recording_selection(0, [])} }} }}"
                )
            parts.append("pageInfo { hasNextPage }")
            roots.append(f"{alias()}recordings(first: {first} {filter_}) {{ {' '.join(parts)} }}")
    roots.append("__typename @include(if: $yes) @skip(if: $no)")  # both variables used
    rec = f"fragment Rec on Recording {{ {alias()}mediaUrl {alias()}media {{ url }} }}"
    spreads_rec = "...Rec" in " ".join(roots)
    return f"query Q($yes: Boolean = true, $no: Boolean = false) {{ {' '.join(roots)} }}" + (
        f" {rec}" if spreads_rec else ""
    )


@settings(max_examples=200, deadline=None)
@given(documents())
def test_random_documents_cost_what_they_resolve(query: str) -> None:
    assert cost(query) == executed(query)


# The oracle: graphql-core executing over the exported schema, counting as the rules say.

SDL_SCHEMA = graphql.build_schema(schema.as_str())
RECORDING = {
    "provider": "TWILIO",
    "id": "1",
    "status": "COMPLETED",
    "providerStatus": "completed",
    "mediaFormats": [],
    "raw": {},
}
MEDIA_LINK = {"url": "u", "expiresAt": "t", "format": "MP3", "contentType": "audio/mpeg"}


def executed(
    query: str, variables: dict[str, Any] | None = None, operation: str | None = None
) -> int:
    spent = 0

    def resolve(parent: Any, info: graphql.GraphQLResolveInfo[Any], **args: Any) -> Any:
        nonlocal spent
        where = (info.parent_type.name, info.field_name)
        if where == ("Query", "recording"):
            spent += 1
            return RECORDING
        if where == ("Query", "recordingsByRef"):
            spent += len(args["refs"])
            return [RECORDING] * len(args["refs"])
        if where == ("Query", "recordings"):
            first = 20 if args["first"] is None else args["first"]
            chosen = (args.get("filter") or {}).get("providers")
            spent += first * (PROVIDERS if chosen is None else len(set(chosen)))
            page = [RECORDING] * first  # a page holds at most `first`, whatever the providers
            return {
                "edges": [{"node": node, "cursor": "c"} for node in page],
                "nodes": page,
                "pageInfo": {"hasNextPage": True, "hasPreviousPage": False},
            }
        if info.parent_type.name == "Recording" and info.field_name in ("media", "mediaUrl"):
            spent += 1
            return MEDIA_LINK if info.field_name == "media" else MEDIA_LINK["url"]
        return graphql.default_field_resolver(parent, info, **args)

    document = graphql.parse(query)
    assert graphql.validate(SDL_SCHEMA, document) == []
    result = graphql.execute_sync(
        SDL_SCHEMA,
        document,
        variable_values=variables,
        operation_name=operation,
        field_resolver=resolve,
    )
    assert result.errors is None, result.errors
    return spent
