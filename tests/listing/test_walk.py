"""The listing's core promise, as a property: walking the connection to the end yields
exactly the matching recordings, newest first, once each, whatever the page size and filter.

Data sets of a few hundred recordings per provider, with ties inside and across providers
(the sandbox seeds every provider's newest recording at the same instant). Hypothesis is
derandomized with a bounded number of examples, so the run is reproducible and quick.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from app.listing.merge import MAX_ROUNDS
from app.models import Provider, RecordingStatus
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.listing.support import Criteria, expected, gateway_call_id, walk
from tests.support import gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

PER_PROVIDER = 200
SEEDS = (7, 2026)
MAX_PAGES = 15


@cache
def sandbox_app(seed: int) -> Starlette:
    """One sandbox per seed for the whole module: listing never changes its data."""
    return create_sandbox_app(SandboxConfig(recordings_per_provider=PER_PROVIDER, seed=seed))


def sandbox_of(app: Starlette) -> Sandbox:
    state: Sandbox = app.state.sandbox
    return state


@st.composite
def instants(draw: st.DrawFn, sandbox: Sandbox) -> datetime:
    """A record's exact creation time, a moment near one, or a UTC midnight (Twilio's days)."""
    record = draw(st.sampled_from(list(sandbox.dataset)))
    kind = draw(st.sampled_from(["exact", "near", "midnight"]))
    if kind == "exact":
        return record.created
    if kind == "midnight":
        return datetime.combine(record.created.date(), time(), UTC)
    return record.created + timedelta(seconds=draw(st.integers(-7200, 7200)))


@st.composite
def criteria(draw: st.DrawFn, sandbox: Sandbox) -> Criteria:
    records = list(sandbox.dataset)
    calls = sorted({c for r in records if (c := gateway_call_id(r))})
    conferences = sorted({r.conference_id for r in records if r.conference_id})
    providers = None
    if draw(st.booleans()):
        chosen = draw(st.sets(st.sampled_from(list(Provider)), min_size=1))
        providers = tuple(p for p in Provider if p in chosen)
    bounds = sorted(draw(st.lists(instants(sandbox), max_size=2)))
    after = before = None
    if len(bounds) == 2:
        after, before = bounds
    elif bounds:
        after, before = (bounds[0], None) if draw(st.booleans()) else (None, bounds[0])
    ids = draw(st.sampled_from(["none", "none", "none", "call", "conference"]))
    statuses = None
    if draw(st.integers(0, 3)) == 0:
        statuses = tuple(draw(st.sets(st.sampled_from(list(RecordingStatus)), min_size=1)))
    return Criteria(
        providers=providers,
        call_id=draw(st.sampled_from(calls)) if ids == "call" else None,
        conference_id=draw(st.sampled_from(conferences)) if ids == "conference" else None,
        created_after=after,
        created_before=before,
        statuses=statuses,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, int, Criteria]:
    seed = draw(st.sampled_from(SEEDS))
    sandbox = sandbox_of(sandbox_app(seed))
    found = draw(criteria(sandbox))
    # Any page size, but at most ~MAX_PAGES pages per walk: hundreds of one-item pages
    # would only make the run slow (small pages are drawn whenever the result is small).
    smallest = max(1, -(-len(expected(sandbox, found)) // MAX_PAGES))
    return seed, draw(st.integers(smallest, 100)), found


def upstream_sizes(sandbox: Sandbox) -> list[int]:
    sizes = []
    for seen in sandbox.requests:
        query = parse_qs(urlsplit(seen.url).query)
        sizes += [int(value) for value in query.get("PageSize", []) + query.get("limit", [])]
    return sizes


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
async def test_the_walk_is_the_sorted_filtered_list(scenario: tuple[int, int, Criteria]) -> None:
    seed, first, found = scenario
    app = sandbox_app(seed)
    sandbox = sandbox_of(app)
    sandbox.requests.clear()
    config = SandboxConfig(recordings_per_provider=PER_PROVIDER, seed=seed)
    settings_ = Settings.from_env(sandbox_env(config))
    async with gateway_client(settings_, httpx.ASGITransport(app=app)) as client:
        seen, pages = await walk(client, first, found)
    want = expected(sandbox, found)
    assert seen == want
    assert all(len(page["edges"]) <= first for page in pages)
    # Only what a page needs: never more than `first` per upstream request, bounded rounds.
    assert all(size <= first for size in upstream_sizes(sandbox))
    assert len(sandbox.requests) <= len(pages) * MAX_ROUNDS * len(Provider)
