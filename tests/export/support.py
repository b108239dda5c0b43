"""Export test helpers: a gateway over the sandbox on a real socket, a fault on the n-th page
of one provider, the ``recordings`` walk with every field, and rows read back from files."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from app.export.rows import COLUMNS
from app.main import create_app
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.middleware import SeenRequest
from app.settings import Settings
from tests.servers import serve
from tests.support import graphql, sandbox_env

#: Rows per upstream page in these tests: the sandbox's few dozen recordings span pages.
PAGE_SIZE = 10
#: No retries: a failed page fails at once (the retry rules have tests of their own).
ENV = {"GATEWAY_MAX_PAGE_SIZE": str(PAGE_SIZE), "GATEWAY_RETRY_ATTEMPTS": "1"}

EXPORT_FIELDS = """
    provider id accountId callId conferenceId status providerStatus source direction
    from to channels durationSeconds startedAt endedAt createdAt updatedAt
    price { amount currency } errorCode
"""
WALK_QUERY = f"""
query Walk($after: String, $filter: RecordingFilter) {{
  recordings(first: 7, after: $after, filter: $filter) {{
    nodes {{ {EXPORT_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""


def settings_for(config: SandboxConfig, extra: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(sandbox_env(config) | ENV | dict(extra or {}))


class FailPage:
    """ASGI middleware before the sandbox: from the ``page``-th request to ``provider`` on,
    the sandbox answers ``status`` (its own error body), ``times`` times."""

    def __init__(self, app: Starlette, provider: str, page: int, status: int = 503) -> None:
        self.app = app
        self.sandbox: Sandbox = app.state.sandbox
        self.provider = provider
        self.page = page
        self.status = status
        self.armed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.armed:
            seen = SeenRequest.from_scope(scope)
            if seen.provider == self.provider:
                if len(self.sandbox.requests_to(self.provider)) == self.page - 1:
                    self.sandbox.faults.inject(self.provider, self.status, times=5)
                    self.armed = False
        await self.app(scope, receive, send)

    def reset(self) -> None:
        """Ready for another export: no request seen, no fault queued, armed again."""
        self.sandbox.requests.clear()
        self.sandbox.faults.clear()
        self.armed = True


@dataclass
class Served:
    url: str
    sandbox: Sandbox


@contextlib.contextmanager
def served_gateway(
    config: SandboxConfig | None = None,
    *,
    fail: tuple[str, int] | None = None,
    extra: Mapping[str, str] | None = None,
) -> Iterator[Served]:
    """The gateway on a real socket, over a fresh sandbox (with ``fail`` = (provider, page):
    that provider's page and the ones after it fail with 503)."""
    config = config or SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    upstream: Any = sandbox_app if fail is None else FailPage(sandbox_app, *fail)
    app = create_app(settings_for(config, extra), transport=httpx.ASGITransport(app=upstream))
    with serve(app) as url:
        yield Served(url, sandbox_app.state.sandbox)


async def graphql_walk(
    client: httpx.AsyncClient, variables: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every node of ``recordings`` for the filter, following the cursors to the end."""
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(1000):
        body = await graphql(client, WALK_QUERY, {"after": after, "filter": variables or {}})
        assert "errors" not in body, body["errors"]
        connection = body["data"]["recordings"]
        nodes += connection["nodes"]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("no end")


def node_as_row(node: Mapping[str, Any]) -> dict[str, Any]:
    """A ``recordings`` node as the export's row should read (timestamps compared as instants,
    to the millisecond; the price as a Decimal)."""
    price = node["price"]
    values = {
        "provider": node["provider"],
        "id": node["id"],
        "account_id": node["accountId"],
        "call_id": node["callId"],
        "conference_id": node["conferenceId"],
        "status": node["status"],
        "provider_status": node["providerStatus"],
        "source": node["source"],
        "direction": node["direction"],
        "from": node["from"],
        "to": node["to"],
        "channels": node["channels"],
        "duration_seconds": node["durationSeconds"],
        "started_at": _millis(node["startedAt"]),
        "ended_at": _millis(node["endedAt"]),
        "created_at": _millis(node["createdAt"]),
        "updated_at": _millis(node["updatedAt"]),
        "price_amount": Decimal(price["amount"]) if price else None,
        "price_currency": price["currency"] if price else None,
        "error_code": node["errorCode"],
    }
    assert tuple(values) == COLUMNS
    return values


def typed(row: Mapping[str, Any]) -> dict[str, Any]:
    """An export row (CSV strings or NDJSON values) in ``node_as_row``'s types."""
    values: dict[str, Any] = {}
    for name in COLUMNS:
        value = row[name]
        if value == "":
            value = None  # CSV: an empty field is a null
        elif value is not None and name in ("channels", "duration_seconds"):
            value = int(value)
        elif value is not None and name.endswith("_at"):
            value = datetime.fromisoformat(value)
        elif value is not None and name == "price_amount":
            value = Decimal(value)
        values[name] = value
    return values


def _millis(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def ndjson_rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]
