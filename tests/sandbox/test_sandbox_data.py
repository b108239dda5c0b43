"""The seeded dataset and the Dataset store."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.sandbox import DEMO, SandboxConfig, build_dataset
from app.sandbox.data import READY_STATUS, STATUSES, Dataset

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
ID_PATTERNS = {"twilio": r"RE[0-9a-f]{32}", "signalwire": UUID, "bird": UUID}
PROVIDERS = ("twilio", "signalwire", "bird")


def test_same_seed_same_data_other_seed_other_data() -> None:
    pinned = replace(DEMO, anchor=datetime(2026, 11, 27, tzinfo=UTC))  # midnight cannot intervene
    first, again = build_dataset(pinned), build_dataset(pinned)
    other = build_dataset(replace(pinned, seed=7))
    assert list(first.all_records()) == list(again.all_records())
    assert [r.id for r in first.all_records()] != [r.id for r in other.all_records()]


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_status_appears_and_most_are_ready(provider: str, index: int) -> None:
    records = build_dataset(DEMO).listing(provider, DEMO.accounts(provider)[index].account)
    assert len(records) == DEMO.recordings_per_provider
    statuses = Counter(r.status for r in records)
    assert set(statuses) == set(STATUSES[provider])
    assert statuses.most_common(1)[0][0] == READY_STATUS[provider]


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_variety(provider: str, index: int) -> None:
    records = build_dataset(DEMO).listing(provider, DEMO.accounts(provider)[index].account)
    assert {r.channels for r in records} == {1, 2}
    assert any(r.conference_id for r in records) and any(not r.conference_id for r in records)
    assert all(1 <= r.duration <= 90 for r in records)
    assert all(re.fullmatch(ID_PATTERNS[provider], r.id) for r in records)
    assert all(r.error_code for r in records if r.status == "absent")
    assert len({r.created for r in records}) < len(records)  # some share an instant
    span = records[0].created - records[-1].created
    assert span.days >= 14


def test_twilio_call_and_conference_ids() -> None:
    records = build_dataset(DEMO).listing("twilio")
    assert all(re.fullmatch(r"CA[0-9a-f]{32}", str(r.call_id)) for r in records)
    conferences = [r.conference_id for r in records if r.conference_id]
    assert all(re.fullmatch(r"CF[0-9a-f]{32}", c) for c in conferences)


def test_signalwire_conference_recordings_have_no_call() -> None:
    records = build_dataset(DEMO).listing("signalwire")
    assert all(r.call_id is None for r in records if r.conference_id)


def test_listing_is_newest_first_with_ties_by_id() -> None:
    records = build_dataset(SandboxConfig(recordings_per_provider=400)).listing("twilio")
    assert len(records) == 400
    keys = [(-r.created.timestamp(), r.id) for r in records]
    assert keys == sorted(keys)


def test_put_get_delete_and_positions() -> None:
    dataset = build_dataset(DEMO)
    record = dataset.listing("bird")[5]
    assert dataset.get("bird", record.id) == record
    updated = dataset.put(replace(record, duration=3 * 3600))
    assert dataset.get("bird", record.id) == updated
    assert dataset.delete("bird", record.id) == updated
    assert dataset.get("bird", record.id) is None
    assert dataset.delete("bird", record.id) is None
    assert dataset.position("bird", record.id) == record.sort_key
    assert dataset.position("bird", "nope") is None
    assert record.id not in {r.id for r in dataset.listing("bird")}
    assert len(dataset) == 3 * DEMO.recordings_per_provider - 1


def test_empty_dataset() -> None:
    assert len(Dataset()) == 0
    assert build_dataset(SandboxConfig(recordings_per_provider=0)).listing("bird") == []


def test_one_recording_is_ready() -> None:
    records = list(build_dataset(SandboxConfig(recordings_per_provider=1)).all_records())
    assert len(records) == 6 and all(r.ready for r in records)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        SandboxConfig(recordings_per_provider=-1)
    with pytest.raises(ValueError):
        SandboxConfig(presign_ttl=0)
    with pytest.raises(ValueError):
        SandboxConfig(latency=-0.5)
    with pytest.raises(ValueError):
        SandboxConfig(accounts_per_provider=0)
    assert SandboxConfig(s3_base_url="http://s3.test/").s3_base_url == "http://s3.test"


def test_records_belong_to_one_account_each() -> None:
    dataset = build_dataset(DEMO)
    demo, other = (a.account for a in DEMO.accounts("bird"))
    mine, theirs = dataset.listing("bird", demo)[3], dataset.listing("bird", other)[3]
    assert dataset.listing("bird") == dataset.listing("bird", demo)
    assert dataset.get("bird", theirs.id) == theirs  # ids are unique across accounts
    assert dataset.get("bird", theirs.id, other) == theirs
    assert dataset.get("bird", theirs.id, demo) is None
    assert dataset.position("bird", theirs.id, other) == theirs.sort_key
    assert dataset.position("bird", theirs.id) is None
    dataset.delete("bird", theirs.id)
    assert dataset.position("bird", theirs.id, other) == theirs.sort_key  # still a position
    assert dataset.position("bird", theirs.id, demo) is None  # but only in its own account
    moved = dataset.put(replace(mine, account=other))
    assert moved in dataset.listing("bird", other) and mine not in dataset.listing("bird")
    assert dataset.accounts("bird") == [demo, other]
    assert len(dataset) == 3 * DEMO.recordings_per_provider - 1  # the primary accounts
    assert len(list(dataset.all_records())) == 6 * DEMO.recordings_per_provider - 1


def test_primary_accounts_of_a_bare_dataset() -> None:
    record = build_dataset(DEMO).listing("signalwire")[0]
    elsewhere = replace(record, account="c0ffee00-0000-4000-8000-000000000000")
    default, chosen = Dataset(), Dataset(primary={"signalwire": elsewhere.account})
    for dataset in (default, chosen):
        dataset.put(record)
        dataset.put(replace(elsewhere, id="c0ffee00-0000-4000-8000-000000000001"))
    assert default.listing("signalwire") == [record]
    assert [r.account for r in chosen.listing("signalwire")] == [elsewhere.account]
    assert chosen.primary["twilio"] == DEMO.twilio_account_sid
