"""The one way the gateway writes an instant: ISO 8601 in UTC with exactly milliseconds.

``2026-11-27T10:00:00.000Z``, whatever the provider gave: Twilio and SignalWire times are whole
seconds, Bird's carry milliseconds. One precision for all means a client parses every value
the same way (``pandas.to_datetime`` infers one format from the first value, and fails on a
column that mixes ``10:00:00+00:00`` with ``10:00:00.234000+00:00``); the fixed width also sorts
as text. Every GraphQL ``DateTime`` is written by ``iso_millis`` (``app.schema.scalars``), and
so is every timestamp of the flat exports.

Sub-millisecond digits are cut, never rounded: a value read back is never later than the
instant it names, so ``createdAfter: <a createdAt seen>`` still includes that recording. An
instant without a time zone is taken as UTC, as the gateway's filter takes it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_millis(moment: datetime) -> str:
    """``moment`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (naive: taken as UTC)."""
    utc = moment if moment.utcoffset() is None else moment.astimezone(UTC)
    # isoformat pads the year to four digits and truncates to the timespec (never rounds).
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
