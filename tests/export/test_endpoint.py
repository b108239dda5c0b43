"""The export endpoint in process: its rows against the ``recordings`` walk, both formats,
pandas, headers, and every refusal before any upstream request."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas
import pytest
from starlette.applications import Starlette

from app.export.rows import COLUMNS
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.export.support import (
    ENV,
    csv_rows,
    graphql_walk,
    ndjson_rows,
    node_as_row,
    settings_for,
    typed,
)
from tests.support import gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

TIMESTAMPS = ["started_at", "ended_at", "created_at", "updated_at"]


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(recordings_per_provider=40)


@pytest.fixture
def sandbox_app(config: SandboxConfig) -> Starlette:
    return create_sandbox_app(config)


@pytest.fixture
def sandbox(sandbox_app: Starlette) -> Sandbox:
    state: Sandbox = sandbox_app.state.sandbox
    return state


@pytest.fixture
async def client(config: SandboxConfig, sandbox_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(settings_for(config), transport) as client:
        yield client


def middle(sandbox: Sandbox) -> datetime:
    """An instant inside the data (read from it: the demo's dates move with the clock)."""
    created = sorted(record.created for record in sandbox.dataset)
    return created[len(created) // 2]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "choose",
    [
        lambda s: {},
        lambda s: {"createdAfter": iso(middle(s))},
        lambda s: {"createdBefore": iso(middle(s)), "statuses": ["COMPLETED", "ABSENT"]},
        lambda s: {
            "providers": ["TWILIO", "BIRD"],
            "createdAfter": iso(middle(s) - timedelta(days=3)),
        },
    ],
    ids=["everything", "after", "before-statuses", "two-providers"],
)
async def test_every_row_equals_the_recordings_walk(
    client: httpx.AsyncClient, sandbox: Sandbox, choose: Callable[[Sandbox], dict[str, Any]]
) -> None:
    variables = choose(sandbox)
    expected = [node_as_row(node) for node in await graphql_walk(client, variables)]
    assert len(expected) > 10
    params = {
        name: ",".join(value) if isinstance(value, list) else value
        for name, value in variables.items()
    }
    csv_answer = await client.get("/export/recordings.csv", params=params)
    ndjson_answer = await client.get("/export/recordings.ndjson", params=params)
    assert csv_answer.status_code == ndjson_answer.status_code == 200
    assert [typed(row) for row in csv_rows(csv_answer.text)] == expected
    assert [typed(row) for row in ndjson_rows(ndjson_answer.text)] == expected
    if "providers" not in variables:  # all three providers are in it
        assert {row["provider"] for row in expected} == {"TWILIO", "SIGNALWIRE", "BIRD"}


async def test_csv_is_rfc4180_utf8_with_a_header(client: httpx.AsyncClient) -> None:
    answer = await client.get("/export/recordings.csv")
    assert answer.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert answer.headers["cache-control"] == "no-store"
    body = answer.content.decode("utf-8")
    assert body.startswith(",".join(COLUMNS) + "\r\n")
    assert body.endswith("\r\n")
    assert "\n" not in body.replace("\r\n", "")  # every record ends in CRLF, no bare LF


async def test_timestamps_have_exactly_milliseconds(client: httpx.AsyncClient) -> None:
    rows = ndjson_rows((await client.get("/export/recordings.ndjson")).text)
    stamps = [row[name] for row in rows for name in TIMESTAMPS if row[name] is not None]
    assert stamps
    for stamp in stamps:  # 2026-11-27T10:00:00.000Z
        assert len(stamp) == 24 and stamp[10] == "T" and stamp[19] == "." and stamp[-1] == "Z"
        assert datetime.fromisoformat(stamp).tzinfo == UTC


async def test_pandas_reads_it_without_a_format(client: httpx.AsyncClient) -> None:
    answer = await client.get("/export/recordings.csv")
    # The README's read: phone numbers as text (pandas would read +14155550100 as a float).
    frame = pandas.read_csv(
        io.BytesIO(answer.content), parse_dates=TIMESTAMPS, dtype={"from": str, "to": str}
    )
    assert list(frame.columns) == list(COLUMNS)
    for name in TIMESTAMPS:  # parsed, as UTC instants, not left as text
        assert str(frame[name].dtype).startswith("datetime64") and "UTC" in str(frame[name].dtype)
    assert frame["duration_seconds"].notna().any()
    # Prices are numbers; Bird reports none.
    assert str(frame["price_amount"].dtype) == "float64"
    assert frame[frame["provider"] != "BIRD"]["price_amount"].notna().any()
    assert frame[frame["provider"] == "BIRD"]["price_amount"].isna().all()
    rows = csv_rows(answer.text)
    assert len(frame) == len(rows)
    phones = frame["from"].dropna()
    assert len(phones) and phones.str.startswith("+").all()
    assert list(phones) == [row["from"] for row in rows if row["from"]]


async def test_content_disposition_names_the_bounds(client: httpx.AsyncClient) -> None:
    answer = await client.get("/export/recordings.csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="recordings-all-now.csv"'
    answer = await client.get(
        "/export/recordings.ndjson",
        params={"createdAfter": "2026-11-01", "createdBefore": "2026-11-27T10:30:00+01:00"},
    )
    assert answer.headers["content-disposition"] == (
        'attachment; filename="recordings-2026-11-01-2026-11-27T093000Z.ndjson"'
    )
    assert answer.headers["content-type"] == "application/x-ndjson"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("providers=TWILIO,ACME", "'ACME' is not one of"),
        ("providers=", "is not one of"),
        ("statuses=DONE", "'DONE' is not one of"),
        ("createdAfter=yesterday", "ISO 8601"),
        ("createdBefore=2026-13-01", "ISO 8601"),
        ("callId=", "must not be empty"),
        ("callId=CA1&callId=CA2", "may be given once"),
        ("createdafter=2026-11-01T00:00:00Z", "unknown parameter `createdafter`"),
        ("format=xlsx", "unknown parameter `format`"),
    ],
)
async def test_a_bad_parameter_is_400_before_any_upstream_request(
    client: httpx.AsyncClient, sandbox: Sandbox, query: str, says: str
) -> None:
    before = len(sandbox.requests)
    for fmt in ("csv", "ndjson"):
        answer = await client.get(f"/export/recordings.{fmt}?{query}")
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/json"
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert says in error["message"]
    assert len(sandbox.requests) == before


async def test_enum_names_are_read_in_any_case(client: httpx.AsyncClient) -> None:
    answer = await client.get("/export/recordings.ndjson?providers=bird&statuses=Completed")
    rows = ndjson_rows(answer.text)
    assert rows and {(row["provider"], row["status"]) for row in rows} == {("BIRD", "COMPLETED")}


async def test_head_answers_the_headers_without_reading_any_provider(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    answer = await client.head("/export/recordings.csv?createdAfter=2026-11-01")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert 'filename="recordings-2026-11-01-now.csv"' in answer.headers["content-disposition"]
    assert (await client.head("/export/recordings.csv?createdAfter=x")).status_code == 400
    assert sandbox.requests == []


async def test_an_empty_range_is_a_header_only(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    before = len(sandbox.requests)
    answer = await client.get(
        "/export/recordings.csv?createdAfter=2026-11-02T00:00:00Z&createdBefore=2026-11-01"
    )
    assert answer.status_code == 200 and answer.text == ",".join(COLUMNS) + "\r\n"
    assert len(sandbox.requests) == before


async def test_a_provider_down_before_the_first_row_is_a_json_503(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.faults.inject("signalwire", 503, times=5)
    for fmt in ("csv", "ndjson"):
        answer = await client.get(f"/export/recordings.{fmt}")
        assert answer.status_code == 503
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
        assert error["extensions"]["provider"] == "SIGNALWIRE"


async def test_an_unconfigured_provider_is_400_before_any_upstream_request(
    sandbox_app: Starlette, sandbox: Sandbox, config: SandboxConfig
) -> None:
    env = {k: v for k, v in (sandbox_env(config) | ENV).items() if not k.startswith("BIRD_")}
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        answer = await client.get("/export/recordings.csv?providers=BIRD")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["extensions"]["code"] == "PROVIDER_NOT_CONFIGURED"
    assert sandbox.requests == []


async def test_credentials_scope_and_rate_limit(
    tmp_path: Path, sandbox_app: Starlette, sandbox: Sandbox, config: SandboxConfig
) -> None:
    env = write_config(
        tmp_path / "gateway.toml",
        config,
        {
            "reader": TenantSpec(key="reader-key-0123456789"),
            "media": TenantSpec(key="media-key-0123456789", scopes=["media:read"]),
            "small": TenantSpec(key="small-key-0123456789", rate_limit="4/hour"),
        },
    )
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env | ENV), transport) as client:
        missing = await client.get("/export/recordings.csv")
        wrong = await client.get("/export/recordings.csv", headers=bearer("nope-0123456789"))
        forbidden = await client.get(
            "/export/recordings.csv", headers=bearer("media-key-0123456789")
        )
        assert sandbox.requests == []
        allowed = await client.get(
            "/export/recordings.csv", headers=bearer("reader-key-0123456789")
        )
        # 4 units: the first round (3 pages) passes, the export then runs out midway.
        limited = await client.get(
            "/export/recordings.ndjson", headers=bearer("small-key-0123456789")
        )
        refused = await client.get("/export/recordings.csv", headers=bearer("small-key-0123456789"))
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert allowed.status_code == 200 and len(csv_rows(allowed.text)) > 0
    assert limited.status_code == 200
    *rows, last = ndjson_rows(limited.text)
    assert rows and last["error"]["code"] == "RATE_LIMITED" and last["error"]["provider"] is None
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
