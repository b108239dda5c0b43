"""One recording as one flat row: the export's columns, in order, and their formats.

Both formats (CSV and NDJSON) are written from ``row``, so they always agree:

- timestamps are ISO 8601 in UTC with exactly millisecond precision and a ``Z``
  (``2026-11-27T10:00:00.000Z``) whatever precision the provider gave (Twilio and SignalWire
  send whole seconds, Bird fractions): one format a parser can infer for the whole column;
- the price is its exact decimal text (never a float) and its currency, in two columns;
  Bird reports no price, so both are empty there;
- enums are their GraphQL names (``TWILIO``, ``COMPLETED``, ``INBOUND``), as ``recordings``
  shows them; a missing value is None (an empty CSV field, a JSON null).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

from app.models import Recording
from app.timestamps import iso_millis

#: The export's columns, in their order (the CSV header, the NDJSON objects' keys).
COLUMNS: tuple[str, ...] = (
    "provider",
    "id",
    "account_id",
    "call_id",
    "conference_id",
    "status",
    "provider_status",
    "source",
    "direction",
    "from",
    "to",
    "channels",
    "duration_seconds",
    "started_at",
    "ended_at",
    "created_at",
    "updated_at",
    "price_amount",
    "price_currency",
    "error_code",
)

Value: TypeAlias = str | int | None
Row: TypeAlias = tuple[Value, ...]


def timestamp(moment: datetime | None) -> str | None:
    """``moment`` in UTC, to the millisecond: ``2026-11-27T10:00:00.000Z`` (naive is UTC)."""
    return None if moment is None else iso_millis(moment)


def row(recording: Recording) -> Row:
    """The values of ``COLUMNS`` for ``recording``."""
    price = recording.price
    return (
        recording.provider.name,
        recording.id,
        recording.account_id,
        recording.call_id,
        recording.conference_id,
        recording.status.name,
        recording.provider_status,
        recording.source,
        recording.direction.name if recording.direction is not None else None,
        recording.from_,
        recording.to,
        recording.channels,
        recording.duration_seconds,
        timestamp(recording.started_at),
        timestamp(recording.ended_at),
        timestamp(recording.created_at),
        timestamp(recording.updated_at),
        str(price.amount) if price is not None else None,
        price.currency if price is not None else None,
        recording.error_code,
    )
