"""The schema's own scalar definitions, given to Strawberry through ``StrawberryConfig.scalar_map``.

``DateTime`` replaces Strawberry's built-in one (``datetime.isoformat()``), which wrote each
provider's precision as it came: ``10:00:00+00:00`` for Twilio and SignalWire beside
``10:00:00.234000+00:00`` for Bird. Mapped by Python type, it covers every ``datetime`` field
of the schema, present and future, in one place: out, always ``app.timestamps.iso_millis``;
in (the filter's bounds), any ISO 8601 form ``datetime.fromisoformat`` reads, with or without
an offset (none: UTC, as ``RecordingFilter`` says).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from app.timestamps import iso_millis

DATETIME_HELP = (
    "An instant, ISO 8601. Served in UTC with exactly milliseconds "
    "(2026-11-27T10:00:00.000Z) whatever the provider's precision; accepted in any ISO 8601 "
    "form, an offset included or not (none: UTC)."
)


def serialize_datetime(value: object) -> str:
    """A field's ``datetime`` as the response carries it."""
    if not isinstance(value, datetime):
        raise TypeError(f"DateTime cannot represent {type(value).__name__}")
    return iso_millis(value)


def parse_datetime(value: object) -> datetime:
    """A variable's or literal's DateTime; a clear coercion error (BAD_USER_INPUT) if bad."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise StrawberryInputCoercionError(
        f"Value cannot represent a DateTime: {value!r}. Expected ISO 8601, "
        "e.g. 2026-11-27T10:00:00Z."
    )


DATETIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description=DATETIME_HELP,
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)

#: For ``StrawberryConfig(scalar_map=...)``: the Python type each definition stands for.
SCALARS: Mapping[object, ScalarDefinition] = {datetime: DATETIME}
