"""recordingStats: exact over the filter (a property against brute force), partial failures,
time zones, the cost limit, the page bounds and the closed-period cache."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.listing.support import Criteria, listed
from tests.listing.test_listing import InFlight
from tests.listing.test_walk import criteria
from tests.stats.support import (
    PER_PROVIDER,
    STATS_QUERY,
    answered_rows,
    env,
    expected_rows,
    providers_in,
    stats,
)
from tests.support import gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

SEED = 11
ZONES = (
    "UTC",
    "Europe/Lisbon",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
)
GROUPS = ("PROVIDER", "ACCOUNT", "DAY", "WEEK", "MONTH", "STATUS", "DIRECTION", "SOURCE")


@cache
def shared_sandbox() -> Starlette:
    """One sandbox for the property: stats never change its data (faults are cleared)."""
    return create_sandbox_app(SandboxConfig(recordings_per_provider=PER_PROVIDER, seed=SEED))


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(recordings_per_provider=PER_PROVIDER)


def state(app: Starlette) -> Sandbox:
    sandbox: Sandbox = app.state.sandbox
    return sandbox


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Criteria, tuple[str, ...], str, Provider | None]:
    found = draw(criteria(state(shared_sandbox())))
    group_by = tuple(
        draw(
            st.lists(
                st.sampled_from(GROUPS), min_size=draw(st.integers(0, 3)), max_size=3, unique=True
            )
        )
    )
    zone = draw(st.sampled_from(ZONES))
    failing = draw(st.sampled_from([None, *Provider]))
    return found, group_by, zone, failing


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
async def test_stats_equal_a_brute_force_aggregation(
    scenario: tuple[Criteria, tuple[str, ...], str, Provider | None],
) -> None:
    found, group_by, zone, failing = scenario
    app = shared_sandbox()
    sandbox = state(app)
    sandbox.faults.clear()
    if failing is not None:
        sandbox.faults.inject(failing.value, 500)
    config = SandboxConfig(recordings_per_provider=PER_PROVIDER, seed=SEED)
    settings_ = env(config, GATEWAY_CACHE_URL="none://")
    try:
        async with gateway_client(settings_, httpx.ASGITransport(app=app)) as client:
            body = await stats(client, found, group_by, zone)
        # The fault was played (a page of that provider was asked for) exactly when the
        # answer names that provider: never a silently smaller total.
        failed = failing is not None and not sandbox.faults.pending()
    finally:
        sandbox.faults.clear()
    errors = body.get("errors", [])
    if failed:
        assert failing is not None
        assert providers_in(errors) == [failing.name]
        assert errors[0]["path"] == ["recordingStats"]
        assert errors[0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    else:
        assert errors == []
    without = frozenset({failing}) if failed and failing is not None else frozenset()
    want = expected_rows(sandbox, found, group_by, zone, without)
    assert answered_rows(body["data"]["recordingStats"]) == want


async def test_costs_are_exact_decimal_sums(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    body = await stats(gateway, group_by=("PROVIDER",))
    rows = {row["key"]["provider"]: row for row in body["data"]["recordingStats"]}
    for provider in ("TWILIO", "SIGNALWIRE"):
        charged = [
            -r.price
            for r in sandbox.dataset
            if r.provider == provider.lower() and listed(r)
            if r.price is not None
        ]
        [money] = rows[provider]["cost"]
        assert money["currency"] == "USD"
        assert Decimal(money["amount"]) == sum(charged, Decimal(0))
        # No binary float went through it: a float sum of these amounts is not exact.
        assert Decimal(money["amount"]) == Decimal(str(Decimal(money["amount"])))
    bird = [r for r in sandbox.dataset if r.provider == "bird"]
    assert rows["BIRD"]["cost"] == []
    assert rows["BIRD"]["unknownCostCount"] == len(bird)


async def test_ungrouped_stats_are_one_row_even_when_nothing_matches(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    never = Criteria(call_id="CA" + "0" * 32)
    body = await stats(gateway, never)
    assert body["data"]["recordingStats"] == [
        {
            "key": dict.fromkeys(
                ("provider", "account", "day", "week", "month", "status", "direction", "source")
            ),
            "count": 0,
            "totalDurationSeconds": 0,
            "averageDurationSeconds": None,
            "unknownDurationCount": 0,
            "cost": [],
            "unknownCostCount": 0,
        }
    ]
    grouped = await stats(gateway, never, ("DAY",))
    assert grouped["data"]["recordingStats"] == []


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "utc+2", "x" * 300])
async def test_a_bad_time_zone_is_bad_input_before_any_upstream_request(
    gateway: httpx.AsyncClient, sandbox: Sandbox, zone: str
) -> None:
    body = await stats(gateway, group_by=("DAY",), zone=zone)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "timeZone" in error["message"]
    assert sandbox.requests == []


async def test_the_walk_reads_pages_of_each_providers_maximum(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    body = await stats(gateway)
    assert "errors" not in body
    sizes = {}
    for seen in sandbox.requests:
        query = parse_qs(urlsplit(seen.url).query)
        for name in ("PageSize", "limit"):
            if name in query:
                sizes[seen.provider] = int(query[name][0])
    assert sizes == {"twilio": 1000, "signalwire": 1000, "bird": 99}


async def test_a_provider_with_more_pages_than_allowed_is_left_out_and_named(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    # Bird pages 99 at a time: the default data set has more than one page of it.
    assert len(sandbox.dataset.listing("bird")) > 99
    settings_ = env(sandbox_config, GATEWAY_STATS_MAX_PAGES="1")
    async with gateway_client(settings_, httpx.ASGITransport(app=sandbox_app)) as client:
        body = await stats(client, group_by=("PROVIDER",))
    [error] = body["errors"]
    assert error["extensions"] == {"code": "STATS_TOO_LARGE", "provider": "BIRD", "maxPages": 1}
    assert error["path"] == ["recordingStats"]
    rows = answered_rows(body["data"]["recordingStats"])
    assert rows == expected_rows(
        sandbox, Criteria(), ("PROVIDER",), "UTC", frozenset({Provider.BIRD})
    )
    assert len(sandbox.requests_to("bird")) == 1


class FailAfterFirstBirdPage(httpx.AsyncBaseTransport):
    """Lets Bird's first page through, then makes its next request fail (a 500)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, sandbox: Sandbox) -> None:
        self.inner = inner
        self.sandbox = sandbox
        self.bird = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "/workspaces/" in request.url.path:
            self.bird += 1
            if self.bird == 1:
                self.sandbox.faults.inject("bird", 500)
        return response


async def test_a_provider_failing_mid_walk_counts_for_nothing(
    settings: Settings, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    transport = FailAfterFirstBirdPage(httpx.ASGITransport(app=sandbox_app), sandbox)
    async with gateway_client(settings, transport) as client:
        body = await stats(client, group_by=("PROVIDER", "STATUS"))
    assert transport.bird == 2  # one page read, the next one failed
    assert providers_in(body["errors"]) == ["BIRD"]
    want = expected_rows(
        sandbox, Criteria(), ("PROVIDER", "STATUS"), "UTC", frozenset({Provider.BIRD})
    )
    assert answered_rows(body["data"]["recordingStats"]) == want


async def test_the_cost_limit_counts_the_pages_stats_may_read(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings_ = env(sandbox_config, GATEWAY_STATS_MAX_PAGES="200")  # 3 x 200 > 500
    async with gateway_client(settings_, httpx.ASGITransport(app=sandbox_app)) as client:
        refused = await stats(client)
        one = await client.post(
            "/graphql",
            json={
                "query": STATS_QUERY,
                "variables": {
                    "filter": {"providers": ["TWILIO"]},
                    "groupBy": [],
                    "timeZone": "UTC",
                },
            },
            headers={"x-gateway-cost": "1"},
        )
    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 600, "maxCost": 500}
    assert [seen.provider for seen in sandbox.requests] == ["twilio"]  # the second ask only
    assert one.json()["extensions"] == {"cost": 200}
    assert "errors" not in one.json()


class HangBirdAfterFirstPage(httpx.AsyncBaseTransport):
    """Bird answers its first page, then never answers (until the gateway gives up)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.bird = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/workspaces/" in request.url.path:
            self.bird += 1
            if self.bird > 1:
                await asyncio.Event().wait()  # cancelled by the request's deadline
        return await self.inner.handle_async_request(request)


async def test_the_walk_ends_with_the_requests_deadline(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings_ = env(sandbox_config, GATEWAY_REQUEST_TIMEOUT="0.5")
    transport = HangBirdAfterFirstPage(httpx.ASGITransport(app=sandbox_app))
    started = time.monotonic()
    async with gateway_client(settings_, transport) as client:
        body = await stats(client, group_by=("PROVIDER",))
    assert time.monotonic() - started < 5
    [error] = body["errors"]
    assert error["extensions"]["provider"] == "BIRD"
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert "deadline" in error["message"]
    rows = answered_rows(body["data"]["recordingStats"])
    without = frozenset({Provider.BIRD})
    assert rows == expected_rows(sandbox, Criteria(), ("PROVIDER",), "UTC", without)


async def test_providers_are_walked_concurrently(
    settings: Settings, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    transport = InFlight(httpx.ASGITransport(app=sandbox_app))
    async with gateway_client(settings, transport) as client:
        body = await stats(client)
    assert "errors" not in body
    assert transport.most == 3


async def test_an_unconfigured_provider_is_named_and_the_others_counted(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    plain = {k: v for k, v in sandbox_env(sandbox_config).items() if not k.startswith("BIRD")}
    async with gateway_client(
        Settings.from_env(plain), httpx.ASGITransport(app=sandbox_app)
    ) as client:
        everyone = await stats(client, group_by=("PROVIDER",))
        named = Criteria(providers=(Provider.BIRD, Provider.TWILIO))
        body = await stats(client, named, ("PROVIDER",))
    configured = Criteria(providers=(Provider.TWILIO, Provider.SIGNALWIRE))
    assert "errors" not in everyone
    assert answered_rows(everyone["data"]["recordingStats"]) == expected_rows(
        sandbox, configured, ("PROVIDER",), "UTC"
    )
    [error] = body["errors"]
    assert error["extensions"] == {"code": "PROVIDER_NOT_CONFIGURED", "provider": "BIRD"}
    twilio = Criteria(providers=(Provider.TWILIO,))
    assert answered_rows(body["data"]["recordingStats"]) == expected_rows(
        sandbox, twilio, ("PROVIDER",), "UTC"
    )


async def test_an_empty_date_range_asks_nobody(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    moment = datetime.now(UTC)
    body = await stats(gateway, Criteria(created_after=moment, created_before=moment))
    assert body["data"]["recordingStats"][0]["count"] == 0
    assert sandbox.requests == []
