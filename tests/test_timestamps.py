"""Every instant the gateway writes is ISO 8601 UTC with exactly milliseconds
(``app.timestamps.iso_millis``, the ``DateTime`` scalar of ``app.schema.scalars``); a DateTime
argument still takes any ISO 8601 form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from app.schema import schema
from app.schema.scalars import SCALARS
from app.timestamps import iso_millis

MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2026, 11, 27, 10, 0, tzinfo=UTC), "2026-11-27T10:00:00.000Z"),
        (datetime(2026, 11, 27, 10, 0, 0, 234_000, tzinfo=UTC), "2026-11-27T10:00:00.234Z"),
        # Cut, never rounded up: the value read back is never later than the instant.
        (datetime(2026, 11, 27, 23, 59, 59, 999_999, tzinfo=UTC), "2026-11-27T23:59:59.999Z"),
        (
            datetime(2026, 11, 28, 1, 30, 0, 5_000, tzinfo=timezone(timedelta(hours=3))),
            "2026-11-27T22:30:00.005Z",
        ),
        (datetime(2026, 11, 27, 10, 0), "2026-11-27T10:00:00.000Z"),  # naive: UTC
        (datetime(5, 1, 1, tzinfo=UTC), "0005-01-01T00:00:00.000Z"),  # the year keeps 4 digits
    ],
)
def test_iso_millis(moment: datetime, written: str) -> None:
    assert iso_millis(moment) == written
    assert MILLIS.match(written)
    assert datetime.fromisoformat(written) == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000,
        tzinfo=moment.tzinfo or UTC,
    )


@strawberry.type
class Probe:
    @strawberry.field
    def echo(self, at: datetime) -> datetime:
        return at

    @strawberry.field
    def later(self, at: datetime) -> list[datetime | None]:
        return [at + timedelta(microseconds=999), None]


PROBE = strawberry.Schema(query=Probe, config=StrawberryConfig(scalar_map=SCALARS))


def run(query: str, variables: dict[str, Any] | None = None) -> Any:
    return PROBE.execute_sync(query, variable_values=variables)


@pytest.mark.parametrize(
    "given",
    [
        "2026-11-27T10:00:00Z",
        "2026-11-27T10:00:00.000Z",
        "2026-11-27T10:00:00+00:00",
        "2026-11-27T12:00:00+02:00",
        "2026-11-27T15:30:00+0530",
        "2026-11-27T10:00:00.000000+00:00",
        "2026-11-27T10:00Z",
        "20261127T100000Z",
        "2026-11-27T10:00:00",  # no offset: UTC
    ],
)
def test_a_datetime_argument_takes_any_iso_8601_form(given: str) -> None:
    for result in (
        run("query($at: DateTime!) { echo(at: $at) }", {"at": given}),
        run(f'{{ echo(at: "{given}") }}'),
    ):
        assert result.errors is None, result.errors
        assert result.data == {"echo": "2026-11-27T10:00:00.000Z"}


def test_every_datetime_field_and_list_item_is_written_in_milliseconds() -> None:
    result = run('{ later(at: "2026-11-27T10:00:00.123456Z") }')
    assert result.errors is None
    assert result.data == {"later": ["2026-11-27T10:00:00.124Z", None]}


@pytest.mark.parametrize("given", ["yesterday", "2026-13-01T00:00:00Z", "", "10:00"])
def test_a_bad_datetime_is_a_clear_input_error(given: str) -> None:
    result = run("query($at: DateTime!) { echo(at: $at) }", {"at": given})
    assert result.errors is not None and result.data is None
    [error] = result.errors
    assert "Value cannot represent a DateTime" in error.message
    assert "Expected ISO 8601" in error.message


def test_a_number_is_no_datetime() -> None:
    result = run("query($at: DateTime!) { echo(at: $at) }", {"at": 1764237600})
    assert result.errors is not None and "Value cannot represent a DateTime" in str(result.errors)


def test_the_gateway_schema_uses_this_datetime() -> None:
    sdl = schema.as_str()
    assert "scalar DateTime" in sdl
    assert "2026-11-27T10:00:00.000Z" in sdl  # the description says what is served
