"""Bounds on the work of validating a document, so that no document stalls the event loop.

Validation runs in the event loop, before the cost limit (which needs a valid document), and
two of its rules can take far longer than parsing the document did (figures:
tests/perf/README.md, "Access control"):

1. Strawberry's depth and alias limits walk a fragment again at every place it is spread, so
   their work grows with the operation once its fragments are *expanded*: sixteen fragments
   each spreading the next twice (a 1 KB document of cost 1) took 270 ms, and each further
   level doubles it. ``expanded_selections`` counts the selections of the expanded operations
   without expanding anything (each fragment is counted once), and ``CachedDocuments``
   refuses a document with more than ``max_expanded`` of them before validation runs.
   A document without fragments has fewer selections than tokens, so the default limit is
   five times ``GATEWAY_MAX_TOKENS``.
2. graphql-core's OverlappingFieldsCanBeMerged compares fields of one response name pairwise
   and stops, refusing the document ("Validation aborted."), once it has spent a budget of
   work (``MAX_COMPLEXITY_BUDGET``, 500,000 units): 0.6-0.75 s here, for ``price { amount }``
   400 times in a document of 1,600 tokens and cost 1. graphql-core documents the module
   attribute as the knob ("it can be raised or lowered by assigning to this module
   attribute, which is read when the validation of the rule starts"); ``bound_overlap_checks``
   lowers it to ``OVERLAP_BUDGET`` for the process. Queries people write spend from nothing
   (every response name once) to a few hundred units.
"""

from __future__ import annotations

from collections import Counter

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.validation.rules import overlapping_fields_can_be_merged

#: graphql-core's overlap check gives up past this much work: ~25 ms here.
OVERLAP_BUDGET = 20_000


def bound_overlap_checks(budget: int = OVERLAP_BUDGET) -> None:
    """Lower graphql-core's budget for comparing overlapping fields (the whole process)."""
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = budget


def expanded_selections(document: DocumentNode, cap: int) -> int:
    """How many selections (fields, inline fragments and spreads) the document's operations
    hold once every fragment spread is replaced by the fragment, or ``cap`` if more.

    Linear in the document: each fragment's own selections are counted once, and its
    expanded count is solved once, depth first with an explicit stack (no recursion on the
    document). A spread that closes a cycle adds only itself (validation refuses cycles).
    """
    fragments = {
        definition.name.value: _shape(definition.selection_set)
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    expanded: dict[str, int] = {}
    for root in fragments:
        stack, opened = [root], set()
        while stack:
            name = stack[-1]
            if name in expanded:
                stack.pop()
                continue
            own, spreads = fragments[name]
            if name not in opened:
                opened.add(name)
                unsolved = [s for s in spreads if s in fragments and s not in expanded]
                stack.extend(s for s in unsolved if s not in opened)
                continue
            expanded[name] = _total(own, spreads, expanded, cap)
            stack.pop()
    total = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            own, spreads = _shape(definition.selection_set)
            total = min(cap, total + _total(own, spreads, expanded, cap))
    return total


def _shape(selection_set: SelectionSetNode) -> tuple[int, Counter[str]]:
    """A selection set's own selections, nested ones included, and the fragments it spreads."""
    count, spreads = 0, Counter[str]()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            count += 1
            if isinstance(selection, FragmentSpreadNode):
                spreads[selection.name.value] += 1
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append(selection.selection_set)
    return count, spreads


def _total(own: int, spreads: Counter[str], expanded: dict[str, int], cap: int) -> int:
    # A fragment not solved yet is one whose spread closes a cycle: it adds nothing.
    return min(cap, own + sum(times * expanded.get(name, 0) for name, times in spreads.items()))
