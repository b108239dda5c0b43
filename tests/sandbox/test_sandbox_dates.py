"""The demo data's dates and prices: the 88 days before the anchor (by default the start of the
current UTC day), the same recordings every day shifted by the days between anchors, the
passing statuses the newest, and prices as each provider writes them (Bird has none)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import httpx
import pytest

from app.sandbox import DEMO, Sandbox, SandboxConfig, SandboxRecording, build_dataset
from app.sandbox.config import day_start
from app.sandbox.data import NOT_STARTED, TRANSIENT
from app.sandbox.seeding import NEWEST, RECENT, SPAN, TIE_SHARE

pytestmark = pytest.mark.anyio

PROVIDERS = ("twilio", "signalwire", "bird")
ANCHOR = datetime(2026, 11, 27, tzinfo=UTC)
PINNED = replace(DEMO, anchor=ANCHOR)
TIMES = ("created", "updated", "started", "ended")


def shifted(record: SandboxRecording, by: timedelta) -> SandboxRecording:
    moved = {name: getattr(record, name) + by for name in TIMES if getattr(record, name)}
    return replace(record, **moved)


def listings(config: SandboxConfig) -> list[tuple[str, list[SandboxRecording]]]:
    """(provider, listing) of every account of every provider."""
    dataset = build_dataset(config)
    return [
        (provider, dataset.listing(provider, account.account))
        for provider in PROVIDERS
        for account in config.accounts(provider)
    ]


# --- one day, another day ----------------------------------------------------------------------


def test_same_seed_and_day_same_data_another_day_the_same_shifted() -> None:
    first, again = build_dataset(PINNED), build_dataset(PINNED)
    assert list(first.all_records()) == list(again.all_records())
    later = build_dataset(replace(PINNED, anchor=ANCHOR + timedelta(days=3)))
    assert list(later.all_records()) != list(first.all_records())
    assert list(later.all_records()) == [shifted(r, timedelta(days=3)) for r in first.all_records()]


def test_the_default_anchor_is_the_start_of_the_current_utc_day() -> None:
    assert DEMO.anchor is None
    assert DEMO.anchor_at(datetime(2026, 11, 27, 23, 59, 59, 999_999, tzinfo=UTC)) == ANCHOR
    assert DEMO.anchor_at(datetime(2026, 11, 28, 0, 0, 1, tzinfo=UTC)) == ANCHOR + timedelta(1)
    east = timezone(timedelta(hours=3))  # 01:00 on the 28th there is 22:00 UTC on the 27th
    assert DEMO.anchor_at(datetime(2026, 11, 28, 1, 0, tzinfo=east)) == ANCHOR
    assert DEMO.pinned(datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) == PINNED
    assert PINNED.anchor_at(ANCHOR + timedelta(days=5)) == ANCHOR
    assert PINNED.pinned(ANCHOR + timedelta(days=5)) is PINNED


def test_a_sandbox_reads_the_clock_once_and_pins_what_it_read() -> None:
    before = day_start(datetime.now(UTC))
    sandbox = Sandbox(DEMO)
    after = day_start(datetime.now(UTC))
    assert sandbox.config.anchor in {before, after}
    assert sandbox.config == replace(DEMO, anchor=sandbox.config.anchor)
    # Rebuilt from its config, the data is the same even if midnight has passed since.
    assert list(build_dataset(sandbox.config).all_records()) == list(sandbox.dataset.all_records())
    assert Sandbox(PINNED).config == PINNED


def test_the_anchor_must_be_aware_and_is_kept_in_utc() -> None:
    with pytest.raises(ValueError, match="aware"):
        SandboxConfig(anchor=datetime(2026, 11, 27))
    config = SandboxConfig(anchor=datetime(2026, 11, 27, 3, tzinfo=timezone(timedelta(hours=3))))
    assert config.anchor == ANCHOR and config.anchor is not None
    assert config.anchor.utcoffset() == timedelta(0)


# --- where the recordings lie ------------------------------------------------------------------


@pytest.mark.parametrize("count", [36, 3000])
def test_the_recordings_fill_the_88_days_before_the_anchor(count: int) -> None:
    config = replace(PINNED, recordings_per_provider=count)
    for provider, records in listings(config):
        assert len(records) == count
        bird = provider == "bird"
        assert records[0].created == ANCHOR - NEWEST + timedelta(milliseconds=234 if bird else 0)
        oldest = records[-1].created
        assert ANCHOR - SPAN <= oldest < ANCHOR - SPAN + timedelta(days=1), provider
        for record in records:
            moments = [m for m in (getattr(record, name) for name in TIMES) if m is not None]
            assert all(m < ANCHOR for m in moments), record  # never later than the clock
            # Twilio and SignalWire write whole seconds; Bird writes milliseconds.
            assert all(m.microsecond % (1000 if bird else 1_000_000) == 0 for m in moments)


def test_ties_stay_as_drawn_however_many_recordings() -> None:
    for count in (36, 3000):
        for provider, records in listings(replace(PINNED, recordings_per_provider=count)):
            tied = sum(1 for a, b in pairwise(records) if a.created == b.created)
            assert tied > 0, provider
            if count > 1000:
                assert abs(tied / count - TIE_SHARE) < 0.03, (provider, tied)


def test_last_30_days_holds_recordings_of_every_provider_and_status_group() -> None:
    window = ANCHOR - timedelta(days=30)
    for provider, records in listings(PINNED):
        recent = [r for r in records if r.created >= window]
        older = [r for r in records if r.created < window]
        assert recent and older, provider
        assert any(r.status not in TRANSIENT[provider] for r in recent), provider


def test_recordings_in_a_passing_status_are_the_newest() -> None:
    for provider, records in listings(PINNED):
        passing = [r for r in records if r.status in TRANSIENT[provider]]
        settled = [r for r in records if r.status not in TRANSIENT[provider]]
        assert passing and settled, provider
        assert min(r.created for r in passing) >= max(r.created for r in settled), provider
        assert records[0].created - min(r.created for r in passing) <= RECENT, provider


def test_started_and_ended_agree_with_the_status() -> None:
    for provider, records in listings(PINNED):
        for record in records:
            if record.status in NOT_STARTED:
                assert record.started is None and record.ended is None, record
                continue
            assert record.started is not None and record.started <= record.created, record
            if record.running:
                assert record.ended is None, record
            else:
                assert record.ended == record.started + timedelta(seconds=record.duration)
                assert record.ended <= record.updated, record
            assert record.updated >= record.created, (provider, record)


# --- prices, as each provider writes them --------------------------------------------------------


async def test_prices_as_each_provider_writes_them(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    formats = {"twilio": r"-\d\.\d{5}", "signalwire": r"-\d\.\d{4}"}  # "-0.00250", "-0.0025"
    paths = {
        "twilio": f"/2010-04-01/Accounts/{DEMO.twilio_account_sid}/Recordings.json",
        "signalwire": (
            f"/api/laml/2010-04-01/Accounts/{DEMO.signalwire_project_id}/Recordings.json"
        ),
    }
    auths = {
        "twilio": (DEMO.twilio_account_sid, DEMO.twilio_auth_token),
        "signalwire": (DEMO.signalwire_project_id, DEMO.signalwire_api_token),
    }
    for provider, pattern in formats.items():
        page = await client.get(paths[provider], params={"PageSize": 100}, auth=auths[provider])
        items = page.json()["recordings"]
        priced = [item for item in items if item["price"] is not None]
        assert priced, provider
        assert all(re.fullmatch(pattern, item["price"]) for item in priced), provider
        assert {item["price_unit"] for item in items} == {"USD"}
        assert all(item["status"] in {"completed", "deleted"} for item in priced), provider
    headers = {"Authorization": f"AccessKey {DEMO.bird_access_key}"}
    page = await client.get(
        f"/workspaces/{DEMO.bird_workspace_id}/recordings", params={"limit": 99}, headers=headers
    )
    results = page.json()["results"]
    assert results and not any("price" in item or "priceUnit" in item for item in results)
