"""The row codec, the two writers and the parameters, on values made here."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from app.errors import BadUserInputError, ProviderUnavailableError
from app.export.params import PARAMETERS, read_filter
from app.export.rows import COLUMNS, row, timestamp
from app.export.writers import CsvWriter, NdjsonWriter, defuse
from app.models import CallDirection, Money, Provider, Recording, RecordingStatus
from app.schema.connection import RecordingFilter

SCHEMA = Path(__file__).resolve().parents[2] / "schema.graphql"

RECORDING = Recording(
    provider=Provider.BIRD,
    id="rec-1",
    status=RecordingStatus.COMPLETED,
    provider_status="available",
    account_id="acc",
    call_id="call",
    source="call",
    direction=CallDirection.INBOUND,
    from_="+14155550100",
    to='=HYPERLINK("http://x")',
    channels=2,
    duration_seconds=61,
    started_at=datetime(2026, 11, 27, 10, 0, 0, 123987, tzinfo=UTC),
    ended_at=datetime(2026, 11, 27, 11, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    created_at=datetime(2026, 11, 27, 10, 0),  # naive: UTC
    price=Money(Decimal("0.00250"), "USD"),
    error_code='a "quoted", multi\nline value',
)


def test_timestamps_are_utc_to_the_millisecond() -> None:
    assert timestamp(datetime(2026, 11, 27, 10, 0, tzinfo=UTC)) == "2026-11-27T10:00:00.000Z"
    late = datetime(2026, 11, 27, 10, 0, 0, 999999, tzinfo=UTC)
    assert timestamp(late) == "2026-11-27T10:00:00.999Z"  # cut, never rounded into a second
    offset = datetime(2026, 11, 27, 1, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert timestamp(offset) == "2026-11-27T06:30:00.000Z"
    assert timestamp(None) is None


def test_a_row_has_every_column_in_order() -> None:
    values = dict(zip(COLUMNS, row(RECORDING), strict=True))
    assert values == {
        "provider": "BIRD",
        "id": "rec-1",
        "account_id": "acc",
        "call_id": "call",
        "conference_id": None,
        "status": "COMPLETED",
        "provider_status": "available",
        "source": "call",
        "direction": "INBOUND",
        "from": "+14155550100",
        "to": '=HYPERLINK("http://x")',
        "channels": 2,
        "duration_seconds": 61,
        "started_at": "2026-11-27T10:00:00.123Z",
        "ended_at": "2026-11-27T10:01:01.000Z",
        "created_at": "2026-11-27T10:00:00.000Z",
        "updated_at": None,
        "price_amount": "0.00250",
        "price_currency": "USD",
        "error_code": 'a "quoted", multi\nline value',
    }
    unpriced = dict(zip(COLUMNS, row(dataclasses.replace(RECORDING, price=None)), strict=True))
    assert unpriced["price_amount"] is None and unpriced["price_currency"] is None


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("+14155550100", "+14155550100"),  # a phone number stays a phone number
        ("-0.25", "-0.25"),
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("", ""),
        (7, 7),
        (None, None),
    ],
)
def test_formulas_are_defused_numbers_are_not(value: str | int | None, written: object) -> None:
    assert defuse(value) == written


def test_csv_quotes_what_needs_it_and_defuses_formulas() -> None:
    writer = CsvWriter()
    data = writer.header() + writer.rows([row(RECORDING)])
    text = data.decode("utf-8")
    assert text.endswith("\r\n")
    header, values = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(header) == COLUMNS
    parsed = dict(zip(COLUMNS, values, strict=True))
    assert parsed["error_code"] == 'a "quoted", multi\nline value'
    assert parsed["to"] == '\'=HYPERLINK("http://x")'
    assert parsed["from"] == "+14155550100"
    assert parsed["conference_id"] == "" and parsed["channels"] == "2"
    assert writer.failure(ProviderUnavailableError("down", provider=Provider.BIRD)) is None


def test_ndjson_is_one_object_per_line_unchanged_and_ends_with_the_error() -> None:
    writer = NdjsonWriter()
    assert writer.header() == b""
    line = writer.rows([row(RECORDING)]).decode()
    assert line.endswith("\n") and line.count("\n") == 1
    parsed = json.loads(line)
    assert list(parsed) == list(COLUMNS) and parsed["to"] == '=HYPERLINK("http://x")'
    trailer = writer.failure(ProviderUnavailableError("Bird failed", provider=Provider.BIRD))
    assert trailer is not None and json.loads(trailer) == {
        "error": {"message": "Bird failed", "code": "PROVIDER_UNAVAILABLE", "provider": "BIRD"}
    }


def test_every_field_of_recording_filter_is_a_parameter() -> None:
    schema = SCHEMA.read_text()
    block = schema[schema.index("input RecordingFilter {") :]
    block = block[: block.index("}")]
    fields = re.findall(r"^\s+(\w+):", block, flags=re.MULTILINE)
    assert set(fields) == set(PARAMETERS)
    python_names = {field.name for field in dataclasses.fields(RecordingFilter)}
    assert {field for field, _ in PARAMETERS.values()} == python_names


def test_parameters_read_into_the_listing_filter() -> None:
    flt = read_filter(
        QueryParams(
            "providers=twilio,BIRD&providers=Bird&statuses=COMPLETED&callId=CA1"
            "&conferenceId=CF1&createdAfter=2026-11-01&createdBefore=2026-11-27T10:00:00%2B01:00"
        )
    )
    assert flt.providers == frozenset({Provider.TWILIO, Provider.BIRD})
    assert flt.statuses == frozenset({RecordingStatus.COMPLETED})
    assert (flt.query.call_id, flt.query.conference_id) == ("CA1", "CF1")
    assert flt.query.created_after == datetime(2026, 11, 1, tzinfo=UTC)
    assert flt.query.created_before == datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert read_filter(QueryParams("")) == RecordingFilter().to_model()
    with pytest.raises(BadUserInputError, match="conferenceId"):
        read_filter(QueryParams("conferenceId=%20"))
