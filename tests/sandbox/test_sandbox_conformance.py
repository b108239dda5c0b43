"""The sandbox's real responses validate against the providers' official schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from app.sandbox import DEMO, Sandbox
from app.sandbox.data import STATUSES

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[1] / "fixtures" / "openapi"
TWILIO = f"/2010-04-01/Accounts/{DEMO.twilio_account_sid}"
SIGNALWIRE = f"/api/laml/2010-04-01/Accounts/{DEMO.signalwire_project_id}"
AUTH = {
    "twilio": (DEMO.twilio_account_sid, DEMO.twilio_auth_token),
    "signalwire": (DEMO.signalwire_project_id, DEMO.signalwire_api_token),
}
BASES = {"twilio": TWILIO, "signalwire": SIGNALWIRE}
SCHEMAS = {
    "twilio": (
        "twilio_recordings.json",
        "api.v2010.account.recording",
        "ListRecordingResponse",
        "ErrorResponse",
    ),
    "signalwire": (
        "signalwire_recordings.json",
        "RecordingResponse",
        "RecordingListResponse",
        "CompatibilityErrorResponse",
    ),
}


def base_of(provider: str, account: str) -> str:
    """The Recordings path prefix of one account."""
    prefix = "/api/laml" if provider == "signalwire" else ""
    return f"{prefix}/2010-04-01/Accounts/{account}"


def load(provider: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / SCHEMAS[provider][0]).read_text())
    return document


def validator(provider: str, name: str) -> Draft202012Validator:
    document = load(provider)
    schema = {"$ref": f"#/$defs/{name}", "$defs": document["$defs"]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def declared(provider: str, name: str) -> set[str]:
    return set(load(provider)["$defs"][name]["properties"])


def test_extracts_say_where_they_come_from() -> None:
    for provider in SCHEMAS:
        comment = load(provider)["$comment"]
        assert "official" in comment and "OpenAPI" in comment


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("provider", ["twilio", "signalwire"])
async def test_fetch_of_every_status_matches_the_schema(
    provider: str, index: int, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    check = validator(provider, SCHEMAS[provider][1])
    fields = declared(provider, SCHEMAS[provider][1])
    account = sandbox.accounts(provider)[index]
    base, auth = base_of(provider, account.account), (account.account, account.secret)
    records = sandbox.dataset.listing(provider, account.account)
    for status in STATUSES[provider]:
        record = next(r for r in records if r.status == status)
        response = await client.get(
            f"{base}/Recordings/{record.id}.json",
            params={"IncludeSoftDeleted": "true"},
            auth=auth,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        check.validate(body)
        assert set(body) == fields
        assert body["status"] == status


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("provider", ["twilio", "signalwire"])
async def test_list_pages_match_the_schema(
    provider: str, index: int, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    check = validator(provider, SCHEMAS[provider][2])
    fields = declared(provider, SCHEMAS[provider][2])
    account = sandbox.accounts(provider)[index]
    base, auth = base_of(provider, account.account), (account.account, account.secret)
    first = await client.get(f"{base}/Recordings.json", params={"PageSize": 5}, auth=auth)
    second = await client.get(first.json()["next_page_uri"], auth=auth)
    for page in (first, second):
        assert page.status_code == 200
        check.validate(page.json())
        assert set(page.json()) == fields
    assert second.json()["page"] == 1


@pytest.mark.parametrize("provider", ["twilio", "signalwire"])
async def test_error_bodies_match_the_schema(
    provider: str, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    check = validator(provider, SCHEMAS[provider][3])
    base, auth = BASES[provider], AUTH[provider]
    missing = "RE" + "0" * 32 if provider == "twilio" else "00000000-0000-4000-8000-000000000000"
    responses = [
        await client.get(f"{base}/Recordings.json"),
        await client.get(f"{base}/Recordings.json", auth=("nobody", "nothing")),
        await client.get(f"{base}/Recordings/{missing}.json", auth=auth),
        await client.get(f"{base}/Recordings.json", params={"PageToken": "PAbad"}, auth=auth),
        await client.get(f"{base}/Recordings.json", params={"PageSize": 0}, auth=auth),
    ]
    sandbox.faults.inject(provider, 429, retry_after=1)
    sandbox.faults.inject(provider, 503)
    responses += [await client.get(f"{base}/Recordings.json", auth=auth) for _ in range(2)]
    assert [r.status_code for r in responses] == [401, 401, 404, 400, 400, 429, 503]
    for response in responses:
        check.validate(response.json())
        assert response.json()["status"] == response.status_code
