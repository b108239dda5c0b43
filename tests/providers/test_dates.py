"""Twilio's and SignalWire's RFC 2822 dates: the precompiled reader of the usual form agrees
with ``email.utils`` (the reader of every other form), on dates drawn at random."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from app.providers import parsing


def by_email_utils(value: str) -> datetime:
    parsed = parsedate_to_datetime(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def test_the_usual_form_reads_as_email_utils_reads_it() -> None:
    draw = random.Random(2822)
    for _ in range(2000):
        instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=draw.randrange(4 * 10**9))
        zone = timezone(timedelta(minutes=draw.randrange(-14 * 60, 14 * 60 + 1)))
        value = format_datetime(instant.astimezone(zone))  # "Fri, 14 Oct 2016 21:56:34 +0000"
        if draw.random() < 0.2:
            value = value.split(", ", 1)[1]  # the day of the week is optional
        assert parsing._USUAL.fullmatch(value), value
        assert parsing.rfc2822(value) == by_email_utils(value) == instant, value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 14 Oct 2016 21:56:34 -0000", datetime(2016, 10, 14, 21, 56, 34, tzinfo=UTC)),
        ("Tue, 25 Sept 2018 10:00:00 +0000", datetime(2018, 9, 25, 10, tzinfo=UTC)),
        ("Fri, 14 Oct 2016 21:56:34 GMT", datetime(2016, 10, 14, 21, 56, 34, tzinfo=UTC)),
        ("fri, 14 oct 2016 21:56:34 +0100", datetime(2016, 10, 14, 20, 56, 34, tzinfo=UTC)),
        ("Fri, 14 Oct 2016 21:56 +0000", datetime(2016, 10, 14, 21, 56, tzinfo=UTC)),
    ],
)
def test_other_forms_go_to_email_utils(value: str, expected: datetime) -> None:
    assert not parsing._USUAL.fullmatch(value) or value.endswith("-0000")
    assert parsing.rfc2822(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Thu, 31 Feb 2021 10:00:00 +0000",
        "Thu, 1 Jan 2021 24:00:00 +0000",
        "Thu, 1 Jan 2021 23:59:60 +0000",
        "14 Oct 2016",
        "yesterday",
    ],
)
def test_an_impossible_date_is_a_value_error_either_way(value: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 2822 date"):
        parsing.rfc2822(value)
