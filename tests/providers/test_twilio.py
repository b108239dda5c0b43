"""Twilio quirks, from recorded payloads (the seed page's examples first)."""

from __future__ import annotations

import pytest

from app.models import Provider
from app.sandbox import DEMO_TWILIO_ACCOUNT_SID
from tests.providers.conftest import Reader

pytestmark = pytest.mark.anyio


async def test_seed_example(read_fixture: Reader) -> None:
    recording, seen = await read_fixture(Provider.TWILIO, "seed_completed.json")
    assert seen[0].url.path == (
        f"/2010-04-01/Accounts/{DEMO_TWILIO_ACCOUNT_SID}/Recordings/"
        "REaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"
    )
    assert seen[0].headers["authorization"].startswith("Basic ")
    assert recording["status"] == "COMPLETED"
    assert recording["providerStatus"] == "completed"
    assert recording["durationSeconds"] == 4  # "4" on the wire
    assert recording["channels"] == 1
    assert recording["startedAt"] == "2016-10-14T21:56:34.000Z"
    assert recording["endedAt"] == "2016-10-14T21:56:38.000Z"  # start_time + duration
    assert recording["createdAt"] == "2016-10-14T21:56:34.000Z"
    assert recording["updatedAt"] == "2016-10-14T21:56:38.000Z"
    assert recording["price"] == {"amount": "0.00250", "currency": "USD"}
    assert recording["source"] == "StartConferenceRecordingAPI"
    assert recording["callId"] == "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert recording["conferenceId"] == "CFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert recording["accountId"] == "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert recording["mediaFormats"] == ["WAV", "MP3"]
    assert recording["direction"] is None
    assert recording["errorCode"] is None


async def test_deleted_with_offset_timezone(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.TWILIO, "seed_deleted.json")
    assert recording["status"] == "DELETED"
    assert recording["startedAt"] == "2022-02-14T21:23:00.000Z"  # +0100 converted to UTC


async def test_in_progress_duration_minus_one_is_unknown(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.TWILIO, "in_progress.json")
    assert recording["status"] == "IN_PROGRESS"
    assert recording["durationSeconds"] is None
    assert recording["endedAt"] is None
    assert recording["price"] is None


async def test_absent_with_integer_error_code(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.TWILIO, "absent.json")
    assert recording["status"] == "ABSENT"
    assert recording["errorCode"] == "13617"
    assert recording["channels"] == 2
    assert recording["durationSeconds"] == 0


async def test_unknown_status_and_source_pass_through(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.TWILIO, "unknown_status.json")
    assert recording["status"] == "UNKNOWN"
    assert recording["providerStatus"] == "exploding"
    assert recording["source"] == "BrandNewSource"
