"""recordings(first, after, filter): order, cursors, limits, partial failures and the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette

from app.listing.merge import MAX_ROUNDS
from app.models import Provider, RecordingStatus
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.listing.support import Criteria, expected, page, refs, status_of, walk
from tests.support import RECORDING_QUERY, gateway_client, graphql, sandbox_env

pytestmark = pytest.mark.anyio


def codes(body: dict[str, object]) -> list[tuple[str | None, str]]:
    errors = body.get("errors") or []
    assert isinstance(errors, list)
    return [(e["extensions"].get("provider"), e["extensions"]["code"]) for e in errors]


async def test_walk_is_newest_first_and_complete(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    seen, pages = await walk(gateway, 7)
    assert seen == expected(sandbox)
    assert len(seen) == len(set(seen))
    first = pages[0]
    assert first["nodes"] == [{"provider": p, "id": i} for p, i in refs(first)]
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]
    assert pages[-1]["pageInfo"]["hasNextPage"] is False


async def test_every_edge_cursor_resumes_right_after_its_edge(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    want = expected(sandbox)
    body = await page(gateway, 30)
    edges = body["data"]["recordings"]["edges"]
    for index in (0, 4, 13, 29):
        after = await page(gateway, 6, edges[index]["cursor"])
        assert refs(after["data"]["recordings"]) == want[index + 1 : index + 7]


async def test_first_page_asks_each_provider_once_for_first_items(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    body = await page(gateway)  # first defaults to 20
    assert len(body["data"]["recordings"]["edges"]) == 20
    assert sorted(seen.provider or "" for seen in sandbox.requests) == [
        "bird",
        "signalwire",
        "twilio",
    ]
    queries = " ".join(seen.query for seen in sandbox.requests)
    assert queries.count("PageSize=20") == 2 and "limit=20" in queries


class InFlight(httpx.AsyncBaseTransport):
    """Counts how many upstream requests are open at once (the transport is the seam).

    Each request yields to the event loop once before it is served, as a network would:
    requests the gateway started together are then all open at the same time.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.now = self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await anyio.lowlevel.checkpoint()
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= 1


async def test_providers_are_fetched_concurrently(
    settings: Settings, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    transport = InFlight(httpx.ASGITransport(app=sandbox_app))
    async with gateway_client(settings, transport) as client:
        body = await page(client, 5)
    assert "errors" not in body
    assert transport.most == 3


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_first_out_of_range_is_bad_input(
    gateway: httpx.AsyncClient, sandbox: Sandbox, first: int
) -> None:
    body = await page(gateway, first)
    assert body["data"] is None
    assert codes(body) == [(None, "BAD_USER_INPUT")]
    assert sandbox.requests == []


async def test_max_page_size_setting(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings = Settings.from_env({**sandbox_env(sandbox_config), "GATEWAY_MAX_PAGE_SIZE": "5"})
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        assert codes(await page(client, 6)) == [(None, "BAD_USER_INPUT")]
        body = await page(client, 5)
    assert len(body["data"]["recordings"]["edges"]) == 5


async def test_first_null_means_twenty(gateway: httpx.AsyncClient) -> None:
    body = await graphql(
        gateway, "query($n: Int) { recordings(first: $n) { nodes { id } } }", {"n": None}
    )
    assert len(body["data"]["recordings"]["nodes"]) == 20


async def test_listed_recordings_are_cached(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    listed = refs((await page(gateway, 30))["data"]["recordings"])
    assert {provider for provider, _ in listed} == {"TWILIO", "SIGNALWIRE", "BIRD"}
    sandbox.requests.clear()
    for provider, rid in listed:
        body = await graphql(gateway, RECORDING_QUERY, {"provider": provider, "id": rid})
        assert body["data"]["recording"]["id"] == rid
    assert sandbox.requests == []


async def test_a_failing_provider_leaves_the_others_and_is_retried(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    want = expected(sandbox)
    got: list[tuple[str, str]] = []
    after = None
    for _ in range(6):  # far enough for Twilio to be past its first upstream page
        connection = (await page(gateway, 5, after))["data"]["recordings"]
        got += refs(connection)
        after = connection["pageInfo"]["endCursor"]
    before = len(sandbox.requests_to("twilio"))
    sandbox.faults.inject("twilio", 500)  # not retried: the page fails
    body = await graphql(
        gateway,
        "query($after: String) { latest: recordings(first: 10, after: $after) {"
        " nodes { provider id } pageInfo { hasNextPage endCursor } } }",
        {"after": after},
    )
    [error] = body["errors"]
    assert error["path"] == ["latest"]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["extensions"]["provider"] == "TWILIO"
    latest = body["data"]["latest"]
    assert len(latest["nodes"]) == 10
    assert {node["provider"] for node in latest["nodes"]} == {"BIRD", "SIGNALWIRE"}
    assert latest["pageInfo"]["hasNextPage"] is True
    rest: list[tuple[str, str]] = []
    cursor = latest["pageInfo"]["endCursor"]
    while cursor is not None:  # to the end: a page may stop short of `first`
        answer = await page(gateway, 100, cursor)
        assert "errors" not in answer
        connection = answer["data"]["recordings"]
        rest += refs(connection)
        cursor = (
            connection["pageInfo"]["endCursor"] if connection["pageInfo"]["hasNextPage"] else None
        )
    tokens = [parse_qs(seen.query).get("PageToken") for seen in sandbox.requests_to("twilio")]
    assert tokens[before] is not None
    assert tokens[before + 1] == tokens[before], "the next cursor retries from the same token"
    got += [(n["provider"], n["id"]) for n in latest["nodes"]]
    got += rest
    assert sorted(got) == sorted(want) and len(got) == len(want), "every recording once"


async def test_when_every_provider_fails_the_page_is_empty_but_resumable(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    for name in ("twilio", "signalwire", "bird"):
        sandbox.faults.inject(name, 429, retry_after=3)
    body = await page(gateway, 5)
    connection = body["data"]["recordings"]
    assert connection["edges"] == []
    assert connection["pageInfo"]["hasNextPage"] is True
    assert sorted(codes(body)) == [
        ("BIRD", "PROVIDER_RATE_LIMITED"),
        ("SIGNALWIRE", "PROVIDER_RATE_LIMITED"),
        ("TWILIO", "PROVIDER_RATE_LIMITED"),
    ]
    assert all(e["extensions"]["retryAfter"] == 3 for e in body["errors"])
    again = await page(gateway, 5, connection["pageInfo"]["endCursor"])
    assert refs(again["data"]["recordings"]) == expected(sandbox)[:5]


@pytest.fixture
async def twilio_and_signalwire_only(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    env = {k: v for k, v in sandbox_env(sandbox_config).items() if not k.startswith("BIRD")}
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        yield client


async def test_unconfigured_providers(
    twilio_and_signalwire_only: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    client = twilio_and_signalwire_only
    seen, _ = await walk(client, 50)
    assert seen == expected(sandbox, Criteria(providers=(Provider.TWILIO, Provider.SIGNALWIRE)))
    named = Criteria(providers=(Provider.BIRD, Provider.TWILIO))
    body = await page(client, 5, criteria=named)
    assert codes(body) == [("BIRD", "PROVIDER_NOT_CONFIGURED")]
    twilio = Criteria(providers=(Provider.TWILIO,))
    assert refs(body["data"]["recordings"]) == expected(sandbox, twilio)[:5]


async def test_an_empty_date_range_asks_nobody(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    body = await page(gateway, 5, criteria=Criteria(created_after=moment, created_before=moment))
    assert body["data"]["recordings"]["edges"] == []
    assert body["data"]["recordings"]["pageInfo"]["hasNextPage"] is False
    assert sandbox.requests == []


@pytest.mark.parametrize("bad_filter", [{"providers": []}, {"callId": ""}, {"conferenceId": "  "}])
async def test_filters_that_mean_nothing_are_bad_input(
    gateway: httpx.AsyncClient, sandbox: Sandbox, bad_filter: dict[str, object]
) -> None:
    body = await graphql(
        gateway,
        "query($f: RecordingFilter) { recordings(filter: $f) { nodes { id } } }",
        {"f": bad_filter},
    )
    assert codes(body) == [(None, "BAD_USER_INPUT")]
    assert sandbox.requests == []


async def test_a_filter_no_provider_applies_is_bounded_per_page(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """Nothing is DELETED in the listings: each page reads at most MAX_ROUNDS pages a lane."""
    nothing = Criteria(statuses=(RecordingStatus.DELETED,))
    body = await page(gateway, 1, criteria=nothing)
    connection = body["data"]["recordings"]
    assert connection["edges"] == []
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["endCursor"]
    assert len(sandbox.requests) == MAX_ROUNDS * 3
    seen, pages = await walk(gateway, 1, nothing)
    assert seen == []
    assert len(pages) > 1


async def test_statuses_and_dates_are_exact(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    records = list(sandbox.dataset)
    middle = sorted(r.created for r in records)[len(records) // 2]
    criteria = Criteria(
        created_after=middle - timedelta(days=20),
        created_before=middle,
        statuses=(RecordingStatus.COMPLETED, RecordingStatus.IN_PROGRESS),
    )
    seen, _ = await walk(gateway, 4, criteria)
    assert seen == expected(sandbox, criteria)
    assert seen, "the window is not empty"


async def test_every_listed_status_is_the_documented_one(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """Each provider status seen in a walk maps as the providers document it."""
    _, pages = await walk(gateway, 100)
    shown = {
        (e["node"]["provider"], e["node"]["id"]): e["node"]["status"]
        for p in pages
        for e in p["edges"]
    }
    records = {(Provider(r.provider).name, r.id): r for r in sandbox.dataset}
    assert shown
    for ref, status in shown.items():
        assert status == status_of(records[ref]).name, ref
    assert {records[ref].status for ref in shown} >= {"available", "completed", "resumed"}


async def test_resuming_survives_a_deletion_inside_the_upstream_page(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """The cursor names the last item taken, not only its offset: a recording deleted
    between two requests shifts the upstream page without a gap or a duplicate."""
    original = expected(sandbox)
    body = await page(gateway, 10)
    shown = refs(body["data"]["recordings"])
    twilio = [rid for provider, rid in shown if provider == "TWILIO"]
    assert len(twilio) >= 2, shown
    sandbox.dataset.delete("twilio", twilio[0])
    rest, _ = await walk_from(gateway, body["data"]["recordings"]["pageInfo"]["endCursor"])
    assert shown + rest == original


async def walk_from(client: httpx.AsyncClient, after: str) -> tuple[list[tuple[str, str]], int]:
    seen: list[tuple[str, str]] = []
    for count in range(1, 100):
        connection = (await page(client, 7, after))["data"]["recordings"]
        seen += refs(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, count
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("no end")
