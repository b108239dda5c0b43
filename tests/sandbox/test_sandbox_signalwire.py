"""The SignalWire sandbox: LaML paths, auth, RFC 2822 date filters, public media."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest

from app.sandbox import DEMO, Sandbox

pytestmark = pytest.mark.anyio

PROJECT = DEMO.signalwire_project_id
BASE = f"/api/laml/2010-04-01/Accounts/{PROJECT}"
AUTH = (PROJECT, DEMO.signalwire_api_token)


async def walk(client: httpx.AsyncClient, **params: str | int) -> list[dict[str, object]]:
    page = (await client.get(f"{BASE}/Recordings.json", params=params, auth=AUTH)).json()
    items = list(page["recordings"])
    while page["next_page_uri"] is not None:
        assert page["next_page_uri"].startswith("/api/laml/2010-04-01/")
        page = (await client.get(page["next_page_uri"], auth=AUTH)).json()
        items += page["recordings"]
    return items


async def test_missing_auth_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/Recordings.json")
    assert response.status_code == 401
    body = response.json()
    assert (body["code"], body["status"], body["message"]) == (20003, 401, "Authenticate")
    assert "signalwire" in body["more_info"]


async def test_twilio_credentials_do_not_open_signalwire(client: httpx.AsyncClient) -> None:
    auth = (DEMO.twilio_account_sid, DEMO.twilio_auth_token)
    assert (await client.get(f"{BASE}/Recordings.json", auth=auth)).status_code == 401


async def test_unknown_recording_is_404(client: httpx.AsyncClient) -> None:
    sid = "19e436af-5688-4307-b03b-bdb2b42b8142"
    response = await client.get(f"{BASE}/Recordings/{sid}.json", auth=AUTH)
    assert response.status_code == 404
    assert response.json()["code"] == 20404
    assert f"{BASE}/Recordings/{sid}.json" in response.json()["message"]


async def test_fetch_types(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sid = sandbox.sample_ids()["signalwire"]
    body = (await client.get(f"{BASE}/Recordings/{sid}.json", auth=AUTH)).json()
    assert body["channel"] == body["channels"] in {"1", "2"}
    assert isinstance(body["duration"], int)
    assert body["uri"] == f"{BASE}/Recordings/{sid}.json"
    assert "media_url" not in body


async def test_absent_error_code_is_a_string(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    record = next(r for r in sandbox.dataset.listing("signalwire") if r.status == "absent")
    body = (await client.get(f"{BASE}/Recordings/{record.id}.json", auth=AUTH)).json()
    assert body["error_code"] == str(record.error_code)


async def test_walk_yields_each_item_once(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    items = await walk(client, PageSize=5)
    assert [i["sid"] for i in items] == [r.id for r in sandbox.dataset.listing("signalwire")]


async def test_envelope_has_no_start_or_end_and_uuid_tokens(client: httpx.AsyncClient) -> None:
    page = (await client.get(f"{BASE}/Recordings.json?PageSize=3", auth=AUTH)).json()
    assert "start" not in page and "end" not in page
    token = page["next_page_uri"].split("PageToken=")[1]
    assert token == "PA" + page["recordings"][-1]["sid"]


async def test_date_filters_are_inclusive_instants(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    records = sandbox.dataset.listing("signalwire")
    pivot = records[len(records) // 2].created
    stamp = format_datetime(pivot)
    after = await walk(client, **{"DateCreated>": stamp, "PageSize": "1000"})
    before = await walk(client, **{"DateCreated<": stamp, "PageSize": "1000"})
    assert {i["sid"] for i in after} == {r.id for r in records if r.created >= pivot}
    assert {i["sid"] for i in before} == {r.id for r in records if r.created <= pivot}
    later = format_datetime(pivot + timedelta(seconds=1))
    strictly = await walk(client, **{"DateCreated>": later, "PageSize": "1000"})
    assert all(parsedate_to_datetime(str(i["date_created"])) > pivot for i in strictly)


async def test_sept_month_is_understood(client: httpx.AsyncClient) -> None:
    params = {"DateCreated>": "Tue, 25 Sept 2018 23:00:00 +0000"}
    response = await client.get(f"{BASE}/Recordings.json", params=params, auth=AUTH)
    assert response.status_code == 200


async def test_bad_date_is_400(client: httpx.AsyncClient) -> None:
    params = {"DateCreated<": "2026-01-01T00:00:00"}
    response = await client.get(f"{BASE}/Recordings.json", params=params, auth=AUTH)
    assert response.status_code == 400


async def test_media_is_public(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sid = sandbox.sample_ids()["signalwire"]
    for suffix, kind in (("", "audio/x-wav"), (".wav", "audio/x-wav"), (".mp3", "audio/mpeg")):
        response = await client.get(f"{BASE}/Recordings/{sid}{suffix}")
        assert (response.status_code, response.headers["content-type"]) == (200, kind)


async def test_delete_is_204_then_404(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sid = sandbox.sample_ids()["signalwire"]
    url = f"{BASE}/Recordings/{sid}.json"
    assert (await client.delete(url)).status_code == 401
    deleted = await client.delete(url, auth=AUTH)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await client.get(url, auth=AUTH)).status_code == 404
    assert (await client.get(f"{BASE}/Recordings/{sid}.mp3")).status_code == 404
    again = await client.delete(url, auth=AUTH)
    assert (again.status_code, again.json()["code"], again.json()["status"]) == (404, 20404, 404)
    assert sid not in {item["sid"] for item in await walk(client, PageSize=1000)}
