"""Bird quirks: camelCase, parties, stereo, zero timestamps, completed vs available."""

from __future__ import annotations

import pytest

from app.models import Provider
from tests.providers.conftest import Reader, load

pytestmark = pytest.mark.anyio


async def test_seed_example(read_fixture: Reader) -> None:
    recording, seen = await read_fixture(Provider.BIRD, "seed_available.json")
    assert seen[0].url.path.endswith("/recordings/5b74ee9e-9d45-473a-82cd-f1f7feea6bbd")
    assert seen[0].headers["authorization"].startswith("AccessKey ")
    assert recording["status"] == "COMPLETED"  # "available": media ready
    assert recording["providerStatus"] == "available"
    assert recording["direction"] == "OUTBOUND"
    assert recording["from"] == "+3197004499436"  # originator.number.identity
    assert recording["to"] == "+351919150029"  # receiver.contact identifierValue
    assert recording["channels"] == 1  # stereo: false
    assert recording["durationSeconds"] == 29
    assert recording["callId"] == "50fa2203-66c2-4820-864a-1a8002952f4e"
    assert recording["source"] == "create-call"
    assert recording["startedAt"] == "2023-10-23T15:55:08.121Z"
    assert recording["endedAt"] == "2023-10-23T15:55:38.101Z"
    assert recording["mediaFormats"] == ["MP3"]
    assert recording["price"] is None


async def test_presigned_url_is_not_kept_in_raw(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.BIRD, "seed_available.json")
    assert "url" in load(Provider.BIRD, "seed_available.json")
    assert "url" not in recording["raw"]
    assert "X-Amz-Signature" not in str(recording)


async def test_reference_example(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.BIRD, "seed_reference_accepted.json")
    assert recording["status"] == "QUEUED"
    assert recording["direction"] == "INBOUND"
    assert recording["channels"] == 2  # stereo: true
    assert recording["conferenceId"] == "123e4567-e89b-12d3-a456-426614174000"


async def test_zero_timestamp_means_unset(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.BIRD, "ongoing_zero_end.json")
    assert recording["status"] == "IN_PROGRESS"
    assert recording["endedAt"] is None
    assert recording["startedAt"] == "2023-10-23T15:55:08.121Z"
    assert recording["channels"] == 2


async def test_completed_is_not_yet_ready(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.BIRD, "conference_completed.json")
    assert recording["status"] == "PROCESSING"
    assert recording["callId"] is None
    assert recording["conferenceId"] == "b1b2b3b4-c1c2-4d1d-8e1e-f1f2f3f4f5f6"
    assert recording["source"] == "bridge-call"


async def test_unknown_status_is_unknown(read_fixture: Reader) -> None:
    recording, _ = await read_fixture(Provider.BIRD, "unknown_status.json")
    assert recording["status"] == "UNKNOWN"
    assert recording["providerStatus"] == "archived-cold"
