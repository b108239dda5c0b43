"""SignalWire quirks: int-or-string values, the "Sept" month, source casing."""

from __future__ import annotations

import pytest

from app.models import Provider
from app.sandbox import DEMO_SIGNALWIRE_PROJECT_ID
from tests.providers.conftest import Reader

pytestmark = pytest.mark.anyio


async def test_seed_retrieve_example(read_fixture: Reader) -> None:
    recording, seen = await read_fixture(Provider.SIGNALWIRE, "seed_retrieve.json")
    assert seen[0].url.path == (
        f"/api/laml/2010-04-01/Accounts/{DEMO_SIGNALWIRE_PROJECT_ID}/Recordings/"
        "19e436af-5688-4307-b03b-bdb2b42b8142.json"
    )
    assert seen[0].headers["authorization"].startswith("Basic ")
    assert recording["status"] == "QUEUED"
    assert recording["durationSeconds"] == 4  # int on the wire
    assert recording["channels"] == 1  # "1" on the wire
    assert recording["startedAt"] == "2018-09-25T23:00:00.000Z"
    assert recording["endedAt"] == "2018-09-26T23:00:04.000Z"  # SignalWire sends end_time
    assert recording["price"] == {"amount": "0.0025", "currency": "USD"}
    assert recording["source"] == "DialVerb"
    assert recording["conferenceId"] is None
    assert recording["accountId"] == "720796a0-8ee9-4350-83bd-2d07a3121f1e"


async def test_sept_month_and_string_duration(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.SIGNALWIRE, "seed_properties_sept.json")
    assert recording["status"] == "COMPLETED"
    assert recording["createdAt"] == "2018-09-25T23:00:00.000Z"
    assert recording["updatedAt"] == "2018-09-26T23:00:04.000Z"
    assert recording["durationSeconds"] == 4  # "4" on the wire
    assert recording["channels"] == 1  # 1 (int) on the wire
    assert recording["conferenceId"] == "2071320d-ee82-4578-84e0-379fb227eb77"


async def test_source_casing_is_twilios(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.SIGNALWIRE, "outbound_api_int_channels.json")
    assert recording["source"] == "OutboundAPI"
    assert recording["channels"] == 2
    assert recording["durationSeconds"] == 17
    assert recording["startedAt"] == "2018-09-03T10:00:00.000Z"
    assert recording["endedAt"] == "2018-09-03T10:00:17.000Z"  # no end_time: start + duration


async def test_absent_conference_string_error_code(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.SIGNALWIRE, "absent_conference.json")
    assert recording["status"] == "ABSENT"
    assert recording["errorCode"] == "13617"
    assert recording["source"] == "StartConferenceRecordingAPI"
    assert recording["callId"] is None
    assert recording["price"] is None


async def test_resumed_is_in_progress(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.SIGNALWIRE, "resumed.json")
    assert recording["status"] == "IN_PROGRESS"
    assert recording["providerStatus"] == "resumed"
    assert recording["source"] == "StartCallRecordingAPI"
