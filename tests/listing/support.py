"""Listing test helpers: walk the connection, and what a walk should yield, from the sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app.models import Provider, RecordingStatus
from app.sandbox import Sandbox, SandboxRecording
from tests.support import graphql

LIST_QUERY = """
query List($first: Int, $after: String, $filter: RecordingFilter) {
  recordings(first: $first, after: $after, filter: $filter) {
    edges { cursor node { provider id createdAt status callId conferenceId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { provider id }
  }
}
"""

Ref = tuple[str, str]  # (provider name, id) as the API shows them


@dataclass(frozen=True)
class Criteria:
    """A RecordingFilter, as test data (also turns into the GraphQL variable)."""

    providers: tuple[Provider, ...] | None = None
    call_id: str | None = None
    conference_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    statuses: tuple[RecordingStatus, ...] | None = None

    def variable(self) -> dict[str, Any]:
        value: dict[str, Any] = {}
        if self.providers is not None:
            value["providers"] = [p.name for p in self.providers]
        if self.call_id is not None:
            value["callId"] = self.call_id
        if self.conference_id is not None:
            value["conferenceId"] = self.conference_id
        if self.created_after is not None:
            value["createdAfter"] = self.created_after.isoformat()
        if self.created_before is not None:
            value["createdBefore"] = self.created_before.isoformat()
        if self.statuses is not None:
            value["statuses"] = [s.name for s in self.statuses]
        return value

    def accepts(self, record: SandboxRecording) -> bool:
        """The gateway's documented semantics, computed from the sandbox's own records."""
        provider = Provider(record.provider)
        if self.providers is not None and provider not in self.providers:
            return False
        if self.call_id is not None and gateway_call_id(record) != self.call_id:
            return False
        if self.conference_id is not None and record.conference_id != self.conference_id:
            return False
        if self.created_after is not None and record.created < self.created_after:
            return False
        if self.created_before is not None and record.created >= self.created_before:
            return False
        return self.statuses is None or status_of(record) in self.statuses


def gateway_call_id(record: SandboxRecording) -> str | None:
    """Bird names a call only on call recordings (``sourceId`` of source "call")."""
    if record.provider == "bird" and record.source != "call":
        return None
    return record.call_id


#: What each status a provider reports means, written out here from the providers' documentation
#: (not read from the adapters' tables, so a wrong entry there is caught). Bird's "completed" is
#: the call being over; its media is ready only at "available".
DOCUMENTED_STATUSES: dict[str, dict[str, RecordingStatus]] = {
    "twilio": {
        "completed": RecordingStatus.COMPLETED,
        "in-progress": RecordingStatus.IN_PROGRESS,
        "paused": RecordingStatus.PAUSED,
        "stopped": RecordingStatus.STOPPED,
        "processing": RecordingStatus.PROCESSING,
        "absent": RecordingStatus.ABSENT,
        "deleted": RecordingStatus.DELETED,
    },
    "signalwire": {
        "completed": RecordingStatus.COMPLETED,
        "queued": RecordingStatus.QUEUED,
        "in-progress": RecordingStatus.IN_PROGRESS,
        "paused": RecordingStatus.PAUSED,
        "resumed": RecordingStatus.IN_PROGRESS,
        "absent": RecordingStatus.ABSENT,
        "stopped": RecordingStatus.STOPPED,
    },
    "bird": {
        "available": RecordingStatus.COMPLETED,
        "accepted": RecordingStatus.QUEUED,
        "ongoing": RecordingStatus.IN_PROGRESS,
        "paused": RecordingStatus.PAUSED,
        "completed": RecordingStatus.PROCESSING,
        "absent": RecordingStatus.ABSENT,
        "failed": RecordingStatus.FAILED,
    },
}


def status_of(record: SandboxRecording) -> RecordingStatus:
    return DOCUMENTED_STATUSES[record.provider][record.status]


def listed(record: SandboxRecording) -> bool:
    """Twilio lists soft-deleted recordings only on request; the gateway does not ask."""
    return record.status != "deleted"


def expected(sandbox: Sandbox, criteria: Criteria = Criteria()) -> list[Ref]:
    """Every matching recording, newest first, ties by provider name then id."""
    records = [r for r in sandbox.dataset if listed(r) and criteria.accepts(r)]
    records.sort(key=lambda r: (-r.created.timestamp(), Provider(r.provider).name, r.id))
    return [(Provider(r.provider).name, r.id) for r in records]


def refs(connection: dict[str, Any]) -> list[Ref]:
    return [(e["node"]["provider"], e["node"]["id"]) for e in connection["edges"]]


async def page(
    client: httpx.AsyncClient,
    first: int | None = None,
    after: str | None = None,
    criteria: Criteria | None = None,
) -> dict[str, Any]:
    """The whole response body of one page."""
    variables: dict[str, Any] = {"after": after}
    if first is not None:
        variables["first"] = first
    if criteria is not None:
        variables["filter"] = criteria.variable()
    return await graphql(client, LIST_QUERY, variables)


async def walk(
    client: httpx.AsyncClient, first: int, criteria: Criteria | None = None, limit: int = 2000
) -> tuple[list[Ref], list[dict[str, Any]]]:
    """Follow endCursor to the end; the refs seen and every page's connection."""
    seen: list[Ref] = []
    pages: list[dict[str, Any]] = []
    after = None
    for _ in range(limit):
        body = await page(client, first, after, criteria)
        assert "errors" not in body, body["errors"]
        connection = body["data"]["recordings"]
        pages.append(connection)
        seen += refs(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, pages
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError(f"no end after {limit} pages")
