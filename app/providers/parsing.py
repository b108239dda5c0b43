"""Lenient readers for the value quirks the providers put on the wire.

Each takes what a provider sent (which may be ``None``, a string or a number)
and returns a clean Python value, or raises ``ValueError`` when the value is
present but cannot mean anything; adapters turn that into PROVIDER_BAD_RESPONSE.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from app.models import Money, RecordingStatus, TranscriptionStatus

# SignalWire has been seen writing "Sept" for September, which RFC 2822 does not allow.
_SEPT = re.compile(r"\bSept\b")
_ZERO_TIME = "0001-01-01T00:00:00"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = {name: number for number, name in enumerate(_MONTHS, start=1)}
#: The one form the providers write (``Fri, 14 Oct 2016 21:56:34 +0000``), read without
#: ``email.utils``: a fifth of the CPU of parsing a Twilio recording went there. Anything
#: else (``Sept``, obsolete zones, folding whitespace) goes to ``email.utils`` as before;
#: tests/providers/test_dates.py checks both agree.
_USUAL = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) ("
    + "|".join(_MONTHS)
    + r") (\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"
)


def rfc2822(value: Any) -> datetime | None:
    """``Fri, 14 Oct 2016 21:56:34 +0000`` (or ``... 25 Sept 2018 ...``) as aware UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 2822 date string, got {type(value).__name__}")
    usual = _USUAL.fullmatch(value)
    if usual is not None:
        return _usual(value, usual)
    try:
        parsed = parsedate_to_datetime(_SEPT.sub("Sep", value))
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"not an RFC 2822 date: {value!r}") from None
    if parsed.tzinfo is None:  # "-0000" means UTC with unknown origin
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _usual(value: str, match: re.Match[str]) -> datetime:
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    try:
        parsed = datetime(
            int(year), _MONTH[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:  # e.g. 31 Feb, or 25:00
        raise ValueError(f"not an RFC 2822 date: {value!r}") from None
    offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
    return parsed - offset if sign == "+" else parsed + offset


def rfc3339(value: Any) -> datetime | None:
    """``2023-10-23T15:55:08.234Z`` as aware UTC; Go's zero time means "not set"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 date string, got {type(value).__name__}")
    if value.startswith(_ZERO_TIME):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an RFC 3339 date: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def integer(value: Any) -> int | None:
    """An int that may arrive as ``4`` or ``"4"``; ``None``/``""`` stay ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"not a whole number: {value!r}") from None
    raise ValueError(f"expected a whole number, got {type(value).__name__}")


def duration(value: Any) -> int | None:
    """Seconds; Twilio's ``"-1"`` (still recording) and other negatives mean unknown."""
    seconds = integer(value)
    return None if seconds is None or seconds < 0 else seconds


def channels(value: Any) -> int | None:
    """1 or 2, from ``1`` or ``"1"``."""
    count = integer(value)
    if count is not None and count not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {count}")
    return count


def text(value: Any) -> str | None:
    """A string field that some providers send as a number (``error_code``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a string or number, got {type(value).__name__}")
    return str(value)


def money(price: Any, unit: Any) -> Money | None:
    """Providers report charges as negative strings (``"-0.00250"``): return the positive sum."""
    if price is None or price == "":
        return None
    try:
        amount = Decimal(str(price))
    except InvalidOperation:
        raise ValueError(f"not a price: {price!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a price: {price!r}")
    return Money(amount=abs(amount), currency=str(unit or "USD").upper())


def status(table: Mapping[str, RecordingStatus], value: Any) -> RecordingStatus:
    """The normalised status; values a provider adds later become UNKNOWN, never a crash."""
    if not isinstance(value, str):
        return RecordingStatus.UNKNOWN
    return table.get(value.strip().lower(), RecordingStatus.UNKNOWN)


def transcription_status(
    table: Mapping[str, TranscriptionStatus], value: Any
) -> TranscriptionStatus:
    """``status`` for transcriptions: unknown values are UNKNOWN."""
    if not isinstance(value, str):
        return TranscriptionStatus.UNKNOWN
    return table.get(value.strip().lower(), TranscriptionStatus.UNKNOWN)
