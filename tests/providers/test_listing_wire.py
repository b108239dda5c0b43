"""Each provider's list request and envelope, as the sandbox sees them on the wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig, SandboxRecording
from app.settings import Settings
from tests.listing.support import Criteria, expected, gateway_call_id, page, refs, walk
from tests.support import SANDBOX_URL, gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

TWILIO = Criteria(providers=(Provider.TWILIO,))
#: The data of the tests that spell out dates on the wire: from 88 days before it.
MARCH_2026 = SandboxConfig(anchor=datetime(2026, 3, 3, tzinfo=UTC))


def params(sandbox: Sandbox, provider: str) -> list[dict[str, str]]:
    """The query of each request to ``provider``, decoded (``DateCreated>`` and all)."""
    return [
        {k: v[0] for k, v in parse_qs(seen.query, keep_blank_values=True).items()}
        for seen in sandbox.requests_to(provider)
    ]


def later_same_day(sandbox: Sandbox, provider: str) -> SandboxRecording:
    """A record with an older one of the same UTC day (so a day filter is too coarse)."""
    records = sandbox.dataset.listing(provider)
    return next(
        newer
        for newer, older in pairwise(records)
        if newer.created.date() == older.created.date() and newer.created > older.created
    )


async def test_twilio_dates_are_whole_days_and_the_gateway_is_exact(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = later_same_day(sandbox, "twilio")
    before = datetime.combine(record.created.date() + timedelta(days=3), datetime.min.time(), UTC)
    criteria = Criteria(
        providers=(Provider.TWILIO,), created_after=record.created, created_before=before
    )
    seen, _ = await walk(gateway, 2, criteria)
    assert seen == expected(sandbox, criteria)
    assert seen[-1] == ("TWILIO", record.id), "same-day older recordings are left out"
    first, *later = params(sandbox, "twilio")
    assert first == {
        "PageSize": "2",
        "DateCreated>": record.created.date().isoformat(),
        # createdBefore is exclusive: midnight belongs to the day before
        "DateCreated<": (before.date() - timedelta(days=1)).isoformat(),
    }
    assert later and all(p["PageToken"].startswith("PA") and p["PageSize"] == "2" for p in later)
    assert all(p["DateCreated>"] == first["DateCreated>"] for p in later), "next_page_uri kept"


async def test_twilio_follows_next_page_uri_verbatim(
    gateway: httpx.AsyncClient,
    sandbox: Sandbox,
    sandbox_app: Starlette,
    sandbox_config: SandboxConfig,
) -> None:
    await walk(gateway, 10, TWILIO)
    requests = sandbox.requests_to("twilio")
    assert len(requests) > 2
    auth = (sandbox_config.twilio_account_sid, sandbox_config.twilio_auth_token)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox_app)) as client:
        for asked, then in pairwise(requests):
            envelope = (await client.get(asked.url, auth=auth)).json()
            assert envelope["next_page_uri"] == f"{then.path}?{then.query}"


async def test_id_filters_go_only_where_the_id_can_be(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = next(r for r in sandbox.dataset.listing("twilio") if r.conference_id and listed(r))
    criteria = Criteria(call_id=record.call_id, conference_id=record.conference_id)
    body = await page(gateway, 5, criteria=criteria)
    assert refs(body["data"]["recordings"]) == expected(sandbox, criteria)
    assert ("TWILIO", record.id) in refs(body["data"]["recordings"])
    assert params(sandbox, "twilio")[0] == {
        "PageSize": "5",
        "CallSid": record.call_id,
        "ConferenceSid": record.conference_id,
    }
    assert sandbox.requests_to("signalwire") == sandbox.requests_to("bird") == []


def listed(record: SandboxRecording) -> bool:
    return record.status != "deleted"


@pytest.mark.parametrize("sandbox_config", [MARCH_2026])
async def test_signalwire_dates_are_rfc2822_instants_widened_to_seconds(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    after = datetime(2026, 2, 10, 15, 30, 0, 250_000, tzinfo=UTC)
    before = datetime(2026, 2, 24, 8, 0, 0, 500_000, tzinfo=UTC)
    criteria = Criteria(
        providers=(Provider.SIGNALWIRE,), created_after=after, created_before=before
    )
    seen, _ = await walk(gateway, 50, criteria)
    assert seen == expected(sandbox, criteria) and seen
    [request] = sandbox.requests_to("signalwire")
    assert request.route_path.startswith("/api/laml/2010-04-01/Accounts/")
    assert params(sandbox, "signalwire")[0] == {
        "PageSize": "50",
        "DateCreated>": "Tue, 10 Feb 2026 15:30:00 +0000",
        "DateCreated<": "Tue, 24 Feb 2026 08:00:01 +0000",
    }


@pytest.mark.parametrize("sandbox_config", [MARCH_2026])
async def test_bird_dates_call_and_conference(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    call = next(r for r in sandbox.dataset.listing("bird") if r.source == "call")
    body = await page(gateway, 5, criteria=Criteria(call_id=gateway_call_id(call)))
    assert ("BIRD", call.id) in refs(body["data"]["recordings"])
    assert params(sandbox, "bird")[-1] == {"limit": "5", "sourceId": call.call_id}
    conference = next(r for r in sandbox.dataset.listing("bird") if r.conference_id)
    criteria = Criteria(
        providers=(Provider.BIRD,),
        conference_id=conference.conference_id,
        created_after=datetime(2025, 1, 1, 0, 0, 0, 250_400, tzinfo=UTC),
        created_before=datetime(2026, 12, 1, 8, 0, 0, 100, tzinfo=UTC),
    )
    asked = len(sandbox.requests_to("bird"))
    body = await page(gateway, 5, criteria=criteria)
    assert refs(body["data"]["recordings"]) == expected(sandbox, criteria)
    assert ("BIRD", conference.id) in refs(body["data"]["recordings"])
    # sourceId would miss call recordings made in the conference: the gateway filters that.
    assert params(sandbox, "bird")[asked] == {
        "limit": "5",
        "startAt": "2025-01-01T00:00:00.250Z",
        "endAt": "2026-12-01T08:00:00.001Z",
    }


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(recordings_per_provider=120)])
async def test_bird_pages_hold_at_most_99(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    bird = Criteria(providers=(Provider.BIRD,))
    seen, pages = await walk(gateway, 100, bird)
    assert seen == expected(sandbox, bird)
    assert [len(p["edges"]) for p in pages] == [100, 20]
    asked = params(sandbox, "bird")
    assert {p["limit"] for p in asked} == {"99"}
    assert "pageToken" not in asked[0] and all(p.get("pageToken") for p in asked[1:])


@pytest.fixture
async def under_prefix(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    """The providers behind a path prefix, as in demo mode (next_page_uri carries it)."""
    host = Starlette(routes=[Mount("/sandbox", app=sandbox_app)])
    settings = Settings.from_env(sandbox_env(sandbox_config, f"{SANDBOX_URL}/sandbox"))
    async with gateway_client(settings, httpx.ASGITransport(app=host)) as client:
        yield client


async def test_next_page_uri_is_relative_to_the_host(
    under_prefix: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    seen, _ = await walk(under_prefix, 9)
    assert seen == expected(sandbox)
    for provider in ("twilio", "signalwire", "bird"):
        assert all(r.path.startswith("/sandbox/") for r in sandbox.requests_to(provider))
    assert any("PageToken=" in r.query for r in sandbox.requests_to("signalwire"))


LAML_BAD = [
    {"recordings": "nope"},
    {"recordings": [1]},
    {"recordings": [{"sid": 5}]},
    {"recordings": [], "next_page_uri": "https://evil.test/2010-04-01/Accounts/x.json"},
    {"recordings": [], "next_page_uri": 7},
]
BIRD_BAD = [{"results": {}}, {"results": ["x"]}, {"results": [], "nextPageToken": 5}, {}]
CASES = [("twilio", b) for b in LAML_BAD] + [("signalwire", b) for b in LAML_BAD[:3]]
CASES += [("bird", b) for b in BIRD_BAD]


@pytest.mark.parametrize(("provider", "envelope"), CASES)
async def test_malformed_envelopes(
    gateway: httpx.AsyncClient, sandbox: Sandbox, provider: str, envelope: object
) -> None:
    sandbox.faults.inject(provider, 200, body=json.dumps(envelope).encode())
    body = await page(gateway, 5)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "PROVIDER_BAD_RESPONSE"
    assert error["extensions"]["provider"] == provider.upper()
    others = {node["provider"] for node in body["data"]["recordings"]["nodes"]}
    assert others and provider.upper() not in others
    assert {urlsplit(seen.url).netloc for seen in sandbox.requests} == {"sandbox.test"}
