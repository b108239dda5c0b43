"""What an analyst gets from the demo: "the last 30 days" has recordings of every provider, and
every timestamp of every provider has the same shape, so pandas parses a mixed column."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.cli import Plan, _build
from app.models import Provider
from app.sandbox import DEMO, Sandbox, build_dataset
from app.settings import Settings
from tests.support import graphql

pytestmark = pytest.mark.anyio

MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TIMES = ("startedAt", "endedAt", "createdAt", "updatedAt")
QUERY = """
query Recent($filter: RecordingFilter, $after: String) {
  recordings(first: 100, filter: $filter, after: $after) {
    nodes { provider id startedAt endedAt createdAt updatedAt durationSeconds
            price { amount currency } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def walk(gateway: httpx.AsyncClient, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the listing, page after page."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await graphql(gateway, QUERY, {**variables, "after": after})
        assert "errors" not in body, body["errors"]
        connection = body["data"]["recordings"]
        nodes += connection["nodes"]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


async def test_the_last_30_days_have_recordings_of_every_provider(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """With the default config (the anchor read from the clock), as the demo runs."""
    since = datetime.now(UTC) - timedelta(days=30)
    nodes = await walk(gateway, {"filter": {"createdAfter": since.isoformat()}})
    assert {node["provider"] for node in nodes} == {p.name for p in Provider}
    want = sum(1 for r in sandbox.dataset if r.created >= since and r.status != "deleted")
    assert len(nodes) == want
    assert all(datetime.fromisoformat(node["createdAt"]) >= since for node in nodes)
    # Priced as each provider prices: Twilio and SignalWire in USD, Bird never.
    priced = {node["provider"] for node in nodes if node["price"] is not None}
    assert priced == {"TWILIO", "SIGNALWIRE"}
    assert {node["price"]["currency"] for node in nodes if node["price"]} == {"USD"}


async def test_the_last_90_days_hold_all_the_demo_data(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    since = datetime.now(UTC) - timedelta(days=90)
    nodes = await walk(gateway, {"filter": {"createdAfter": since.isoformat()}})
    assert len(nodes) == len(await walk(gateway, {})) > 0


async def test_every_timestamp_of_every_provider_has_milliseconds_and_pandas_reads_them(
    gateway: httpx.AsyncClient,
) -> None:
    nodes = await walk(gateway, {})
    assert {node["provider"] for node in nodes} == {p.name for p in Provider}
    written = [node[name] for node in nodes for name in TIMES if node[name] is not None]
    for provider in Provider:  # every provider has each field set somewhere
        mine = [node for node in nodes if node["provider"] == provider.name]
        assert all(any(node[name] for node in mine) for name in TIMES), provider
    bad = [value for value in written if not MILLIS.match(value)]
    assert not bad, bad[:5]
    assert any(not value.endswith(".000Z") for value in written)  # Bird's milliseconds stay
    pandas = pytest.importorskip("pandas")
    parsed = pandas.to_datetime(written)  # one format inferred from the first, for all
    assert len(parsed) == len(written)
    assert str(parsed.tz) == "UTC"
    # What the gateway wrote before (each provider's own precision) is what pandas refused.
    with pytest.raises(ValueError):
        pandas.to_datetime(["2026-11-27T10:00:00+00:00", "2026-11-27T10:00:00.234000+00:00"])


def test_every_demo_worker_builds_its_sandbox_on_the_first_process_anchor() -> None:
    """``serve --demo --workers N``: the plan carries the anchor the first process read, so a
    worker started after midnight UTC still serves the same recordings as the others."""
    plan = Plan("127.0.0.1", 8000, demo=True, demo_anchor="2026-03-03T00:00:00+00:00")
    _, sandbox = _build(Settings(), plan)
    assert sandbox is not None
    assert sandbox.config.anchor == datetime(2026, 3, 3, tzinfo=UTC)
    same = build_dataset(replace(DEMO, anchor=datetime(2026, 3, 3, tzinfo=UTC)))
    assert list(sandbox.dataset.all_records()) == list(same.all_records())
