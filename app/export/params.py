"""The export's query parameters: the same filter as ``recordings(filter:)``, as a URL says it.

``providers=TWILIO,BIRD&createdAfter=2026-11-01T00:00:00Z&createdBefore=…&statuses=COMPLETED
&callId=…&conferenceId=…``: one parameter per field of ``RecordingFilter``, named as in GraphQL
(``PARAMETERS``; tests/export check that none is missing). Lists are comma-separated or
repeated, names in any case; a date is ISO 8601 (``Z`` or an offset; none is UTC; a bare date
is its midnight). The values are then checked by ``RecordingFilter.to_model``, exactly as for
GraphQL.

Anything else is BAD_USER_INPUT, before any upstream request: an unknown value, a date that
is not one, a single-valued parameter given twice, and an unknown parameter (a misspelt
``createdafter`` would otherwise export everything, silently).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from starlette.datastructures import QueryParams

from app.errors import BadUserInputError
from app.listing.merge import ListFilter
from app.models import Provider, RecordingStatus
from app.schema.connection import RecordingFilter

E = TypeVar("E", bound=enum.Enum)


def _members(kind: type[E]) -> Callable[[str, list[str]], list[E]]:
    def parse(name: str, values: list[str]) -> list[E]:
        items = [item.strip() for value in values for item in value.split(",")]
        chosen: list[E] = []
        for item in items:
            member = kind.__members__.get(item.upper())
            if member is None:
                known = ", ".join(kind.__members__)
                raise BadUserInputError(f"`{name}`: {item!r} is not one of {known}")
            if member not in chosen:
                chosen.append(member)
        return chosen

    return parse


def _text(name: str, values: list[str]) -> str:
    return _single(name, values)


def _instant(name: str, values: list[str]) -> datetime:
    value = _single(name, values)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BadUserInputError(
            f"`{name}` must be an ISO 8601 date-time such as 2026-11-01T00:00:00Z, got {value!r}"
        ) from None


def _single(name: str, values: list[str]) -> str:
    if len(values) != 1:
        raise BadUserInputError(f"`{name}` may be given once, got {len(values)} values")
    return values[0]


#: Query parameter -> (RecordingFilter's field, how its value is read).
PARAMETERS: dict[str, tuple[str, Callable[[str, list[str]], Any]]] = {
    "providers": ("providers", _members(Provider)),
    "callId": ("call_id", _text),
    "conferenceId": ("conference_id", _text),
    "createdAfter": ("created_after", _instant),
    "createdBefore": ("created_before", _instant),
    "statuses": ("statuses", _members(RecordingStatus)),
}


def read_filter(params: QueryParams) -> ListFilter:
    """The listing filter the query parameters ask for, or BAD_USER_INPUT."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        known = ", ".join(PARAMETERS)
        raise BadUserInputError(f"unknown parameter `{unknown[0]}`; the filter takes {known}")
    values = {
        field: parse(name, params.getlist(name))
        for name, (field, parse) in PARAMETERS.items()
        if name in params
    }
    return RecordingFilter(**values).to_model()
