"""What a GraphQL request will cost upstream, estimated from its document before it runs.

The gateway refuses a request whose estimate is over ``GATEWAY_MAX_COST`` and charges the
estimate to the tenant's rate limit, so the estimate must never be *under* the work a request
can cause. The units (issue 11, "Limits"):

- each ``recording`` field: 1;
- each ``recordingsByRef``: 1 per ref (the list literal's length, or the variable's);
- each ``recordings``: ``first`` x the providers it lists (``filter.providers``, duplicates
  counted once; without it, every provider the tenant has configured). ``first`` absent or
  null is the resolver's default (20);
- each ``deleteRecording`` (a mutation): 1, its one DELETE (a retry is no new request, as
  for every field);
- each ``recordingStats``: ``stats_max_pages`` (``GATEWAY_STATS_MAX_PAGES``) x the providers it
  reads (its ``filter.providers``, as for ``recordings``): it walks each to its end and stops a
  provider that has more pages than that (``app.stats``);
- each ``media`` or ``mediaUrl`` on a Recording: 1 per recording it is resolved on, that is
  x the recordings its parent yields: 1 under ``recording``, the refs under
  ``recordingsByRef``, ``first`` under ``recordings``' ``edges.node`` and ``nodes`` (a page
  holds at most ``first`` recordings, however many providers are merged into it; selecting
  both ``edges.node`` and ``nodes`` resolves, and counts, both);
- each ``transcriptions`` on a Recording: ``TRANSCRIPTION_CALLS`` (the most upstream calls
  listing one recording's transcriptions makes: pages, and Bird's text downloads) per
  recording it is resolved on, multiplied as ``media`` is; a cached list costs nothing when
  it runs, but the estimate cannot know it will be cached;
- each ``requestTranscription`` (a mutation): 1.

Fragments (named, inline, nested, reused) are followed, every alias counts, and ``@skip`` /
``@include`` are honoured. Everything else (``__typename``, introspection, scalars, fields this
schema does not have) is free: validation refuses what does not exist, and the estimator does
not descend into it. Only the operation that would run counts (``operation_name``, or the only
one); a document where none would run costs 0, as nothing reaches a provider.

Deliberate overestimates, which are safe: fields GraphQL merges (the same response key twice,
the same fragment spread twice in one selection) are counted each time; a condition or an
argument that cannot be read (a missing variable, a value of the wrong type, which coercion
will refuse anyway) counts as the worst case: ``first`` as ``max_page_size``, refs as
``max_batch``, ``@skip``/``@include`` as included. Values are not clamped down: a ``first`` of
10**9 costs that much, so the cost limit refuses it. A negative ``first`` costs 0 (the resolver
refuses it).

Hostile documents (this may run before validation): a fragment that spreads itself, directly
or not, adds 0 where the cycle closes; nothing recurses on the document's depth; each named
fragment's body is walked once per place it is spread in (at most four), its cost kept as a
number the spread multiplies, so ten levels of fragments each spreading the previous one twice
cost 2**10 in time linear in the document, not exponential.

Why hand-written: no maintained library fits. Strawberry ships depth, alias and token limiters,
no cost; ``graphql-complexity`` (1.0.0) counts only literal list lengths (not variables),
cannot multiply by a per-tenant provider count, re-evaluates a fragment at every spread
(exponential on nested reuse) with no cycle guard, and its Strawberry extra is pinned to a
Strawberry release older than ours. The rules above are few and specific to this schema.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)

from app.providers.protocol import TRANSCRIPTION_CALLS
from app.schema.connection import DEFAULT_PAGE_SIZE


def estimate(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    *,
    providers: int,
    max_page_size: int = 100,
    max_batch: int = 100,
    stats_max_pages: int = 100,
) -> int:
    """The upstream cost of running ``operation_name`` of ``document`` with ``variables``.

    ``providers`` is how many providers the caller's tenant has configured; ``max_page_size``
    and ``max_batch`` stand in for a ``first`` or ``refs`` that cannot be read;
    ``stats_max_pages`` is what each provider a ``recordingStats`` reads may cost.
    """
    operation = _operation(document, operation_name)
    if operation is None:
        return 0
    estimator = _Estimator(
        document,
        operation,
        variables if isinstance(variables, Mapping) else {},
        providers=providers,
        max_page_size=max_page_size,
        max_batch=max_batch,
        stats_max_pages=stats_max_pages,
    )
    return estimator.total()


class _Place(enum.Enum):
    """The type whose fields a selection set selects: what a field name there means."""

    QUERY = "Query"
    MUTATION = "Mutation"
    CONNECTION = "RecordingConnection"
    EDGE = "RecordingEdge"
    RECORDING = "Recording"


# Fields leading from one costed place to another, each yielding what its parent yields.
_INNER = {
    (_Place.CONNECTION, "edges"): _Place.EDGE,
    (_Place.CONNECTION, "nodes"): _Place.RECORDING,
    (_Place.EDGE, "node"): _Place.RECORDING,
}
_MEDIA_FIELDS = frozenset({"media", "mediaUrl"})
#: Mutation fields and the upstream requests each makes (its result holds no recording).
_MUTATIONS = {"deleteRecording": 1, "requestTranscription": 1}

# A named fragment spread in a place; its cost there does not depend on where it is spread.
_Key = tuple[str, _Place]


class _Linear:
    """A cost as ``constant + sum of times x cost(fragment in place)``: a selection set's own
    fields, and the fragments it spreads, each weighted by the recordings it is spread on."""

    def __init__(self) -> None:
        self.constant = 0
        self.spreads: dict[_Key, int] = {}


_MISSING: Any = object()  # a variable neither given nor defaulted


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation graphql-core would run, or None where it would refuse to run any."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name is not None and op.name.value == name), None)


class _Estimator:
    def __init__(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        *,
        providers: int,
        max_page_size: int,
        max_batch: int,
        stats_max_pages: int,
    ) -> None:
        self.operation = operation
        self.variables = variables
        # Defaults are constants (the parser allows no variable in them).
        self.defaults: dict[str, ValueNode] = {
            d.variable.name.value: d.default_value
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        }
        # The last definition of a name wins, as in graphql-core's execution.
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.providers = providers
        self.max_page_size = max_page_size
        self.max_batch = max_batch
        self.stats_max_pages = stats_max_pages

    def total(self) -> int:
        """The operation's cost: its own fields, plus each fragment's cost times its weight.

        Fragment costs are solved depth first with an explicit stack (no recursion on the
        document), each once; a spread closing a cycle adds 0.
        """
        mutation = self.operation.operation is OperationType.MUTATION
        root = _Place.MUTATION if mutation else _Place.QUERY
        top = self._walk(self.operation.selection_set, root)
        forms: dict[_Key, _Linear] = {}
        costs: dict[_Key, int] = {}
        open_keys: set[_Key] = set()

        def enter(key: _Key) -> tuple[_Key, Iterator[_Key]]:
            open_keys.add(key)
            forms[key] = self._fragment(key)
            return key, iter(forms[key].spreads)

        for start in top.spreads:
            if start in costs:
                continue
            stack = [enter(start)]
            while stack:
                key, pending = stack[-1]
                for spread in pending:
                    if spread not in costs and spread not in open_keys:
                        stack.append(enter(spread))
                        break
                else:
                    stack.pop()
                    open_keys.discard(key)
                    costs[key] = _evaluate(forms[key], costs)
        return _evaluate(top, costs)

    def _fragment(self, key: _Key) -> _Linear:
        name, place = key
        fragment = self.fragments.get(name)
        return _Linear() if fragment is None else self._walk(fragment.selection_set, place)

    def _walk(self, selection_set: SelectionSetNode, place: _Place) -> _Linear:
        """One selection set's cost, leaving the named fragments it spreads unsolved."""
        linear = _Linear()
        pending = [(selection_set, place, 1)]
        while pending:
            selections, where, times = pending.pop()
            for selection in selections.selections:
                if not self._included(selection.directives):
                    continue
                if isinstance(selection, FieldNode):
                    cost, inner, each = self._field(selection, where)
                    linear.constant += times * cost
                    if inner is not None and selection.selection_set is not None:
                        pending.append((selection.selection_set, inner, times * each))
                elif isinstance(selection, InlineFragmentNode):
                    pending.append((selection.selection_set, where, times))
                elif isinstance(selection, FragmentSpreadNode):
                    key = (selection.name.value, where)
                    linear.spreads[key] = linear.spreads.get(key, 0) + times
        return linear

    def _field(self, field: FieldNode, place: _Place) -> tuple[int, _Place | None, int]:
        """The field's own cost, the place its selection set selects in, and how many of
        that place it yields per parent."""
        name = field.name.value
        if place is _Place.QUERY:
            if name == "recording":
                return 1, _Place.RECORDING, 1
            if name == "recordingsByRef":
                refs = self._refs(field)
                return refs, _Place.RECORDING, refs
            if name == "recordings":
                first = self._first(field)
                return first * self._selected_providers(field), _Place.CONNECTION, first
            if name == "recordingStats":
                return self.stats_max_pages * self._selected_providers(field), None, 0
            return 0, None, 0
        if place is _Place.MUTATION:
            return _MUTATIONS.get(name, 0), None, 0
        if place is _Place.RECORDING:
            if name == "transcriptions":
                return TRANSCRIPTION_CALLS, None, 0
            return (1 if name in _MEDIA_FIELDS else 0), None, 0
        return 0, _INNER.get((place, name)), 1

    # Arguments. A value is read shallowly, never recursively: either a Python value from
    # the variables or an AST node (a literal, or a variable's default).

    def _argument(self, field: FieldNode | DirectiveNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                return self._resolve(argument.value)
        return _MISSING

    def _resolve(self, value: Any) -> Any:
        if not isinstance(value, VariableNode):
            return value
        name = value.name.value
        if name in self.variables:
            return self.variables[name]
        default = self.defaults.get(name, _MISSING)
        return _MISSING if isinstance(default, VariableNode) else default

    def _first(self, field: FieldNode) -> int:
        value = self._argument(field, "first")
        if value is _MISSING or value is None or isinstance(value, NullValueNode):
            return DEFAULT_PAGE_SIZE
        if isinstance(value, IntValueNode):
            try:
                value = int(value.value)
            except ValueError:  # over Python's 4300 digits (Int is 32-bit: invalid anyway)
                return self.max_page_size
        if not isinstance(value, int) or isinstance(value, bool):
            return self.max_page_size
        return max(value, 0)

    def _refs(self, field: FieldNode) -> int:
        value = self._argument(field, "refs")
        if isinstance(value, ListValueNode):
            return len(value.values)
        if isinstance(value, list | tuple):
            return len(value)
        return self.max_batch

    def _selected_providers(self, field: FieldNode) -> int:
        chosen = self._argument(field, "filter")
        if isinstance(chosen, ObjectValueNode):
            found = (f.value for f in chosen.fields if f.name.value == "providers")
            chosen = self._resolve(next(found, _MISSING))
        elif isinstance(chosen, Mapping):
            chosen = chosen.get("providers", _MISSING)
        else:
            return self.providers
        if isinstance(chosen, ListValueNode):
            return _distinct(self._resolve(item) for item in chosen.values)
        if isinstance(chosen, list | tuple):
            return _distinct(chosen)
        return self.providers

    def _included(self, directives: Sequence[DirectiveNode] | None) -> bool:
        """False only where a ``@skip`` or ``@include`` condition reads as skipping."""
        for directive in directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = self._argument(directive, "if")
            if isinstance(condition, BooleanValueNode):
                condition = condition.value
            if condition is (name == "skip"):
                return False
        return True


def _distinct(items: Any) -> int:
    """How many different providers ``items`` names; anything unreadable counts apart."""
    names: set[object] = set()
    for item in items:
        if isinstance(item, EnumValueNode | StringValueNode):
            names.add(item.value)
        elif isinstance(item, str):
            names.add(item)
        else:
            names.add(object())
    return len(names)


def _evaluate(linear: _Linear, costs: Mapping[_Key, int]) -> int:
    spreads = linear.spreads.items()
    return linear.constant + sum(times * costs.get(key, 0) for key, times in spreads)
