"""The Bird sandbox and its S3 links: auth, 404/422, paging, filters, 307 -> presigned MP3."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.sandbox import DEMO, Sandbox, SandboxConfig, create_sandbox_app

pytestmark = pytest.mark.anyio

WORKSPACE = DEMO.bird_workspace_id
BASE = f"/workspaces/{WORKSPACE}/recordings"
HEADERS = {"Authorization": f"AccessKey {DEMO.bird_access_key}"}
MISSING = "5b74ee9e-9d45-473a-82cd-f1f7feea6bbd"
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def walk(client: httpx.AsyncClient, **params: str | int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = (await client.get(BASE, params=params, headers=HEADERS)).json()
        items += page["results"]
        if not page.get("nextPageToken"):
            return items
        params["pageToken"] = page["nextPageToken"]


async def redirect_location(client: httpx.AsyncClient, recording_id: str) -> str:
    response = await client.get(f"{BASE}/{recording_id}.mp3", headers=HEADERS)
    assert response.status_code == 307
    return response.headers["location"]


@pytest.mark.parametrize("header", [None, "Bearer x", f"AccessKey {'nope'}", "AccessKey"])
async def test_bad_access_key_is_401(client: httpx.AsyncClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.get(BASE, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"
    assert isinstance(response.json()["message"], str)


async def test_other_workspace_is_403(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/workspaces/{MISSING}/recordings", headers=HEADERS)
    assert (response.status_code, response.json()["code"]) == (403, "Forbidden")


async def test_unknown_recording_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/{MISSING}", headers=HEADERS)
    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"


@pytest.mark.parametrize("name", ["not-a-uuid", "RE" + "0" * 32, "123"])
async def test_non_uuid_id_is_422(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"{BASE}/{name}", headers=HEADERS)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "InvalidPayload"
    assert body["details"] == {"recordingId": ["must be a valid UUID"]}


async def test_fetch_shape(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    rid = sandbox.sample_ids()["bird"]
    body = (await client.get(f"{BASE}/{rid}", headers=HEADERS)).json()
    assert body["id"] == rid and body["status"] == "available" and body["format"] == "mp3"
    assert isinstance(body["duration"], int) and isinstance(body["stereo"], bool)
    assert body["originator"]["number"]["type"] == "pstn"
    assert body["url"].startswith("http://sandbox.test/_s3/voice-recordings/")
    for key in ("createdAt", "updatedAt", "startedAt", "endedAt"):
        assert RFC3339_MS.match(body[key]), body[key]


async def test_unstarted_recordings_have_zero_times_and_no_url(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = next(r for r in sandbox.dataset.listing("bird") if r.status == "accepted")
    body = (await client.get(f"{BASE}/{record.id}", headers=HEADERS)).json()
    assert body["startedAt"] == body["endedAt"] == "0001-01-01T00:00:00Z"
    assert "url" not in body


async def test_walk_yields_each_item_once_newest_first(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    items = await walk(client, limit=7)
    assert [i["id"] for i in items] == [r.id for r in sandbox.dataset.listing("bird")]
    stamps = [datetime.fromisoformat(str(i["createdAt"])) for i in items]
    assert stamps == sorted(stamps, reverse=True)


async def test_limit_is_honoured_and_last_page_has_no_token(client: httpx.AsyncClient) -> None:
    page = (await client.get(BASE, params={"limit": 5}, headers=HEADERS)).json()
    assert len(page["results"]) == 5 and page["nextPageToken"]
    everything = (await client.get(BASE, params={"limit": 99}, headers=HEADERS)).json()
    assert "nextPageToken" not in everything


@pytest.mark.parametrize("limit", ["0", "100", "ten"])
async def test_limit_out_of_range_is_422(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get(BASE, params={"limit": limit}, headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["code"] == "InvalidPayload"
    assert "limit" in response.json()["details"]


async def test_bad_page_token_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get(BASE, params={"pageToken": "bogus"}, headers=HEADERS)
    assert response.status_code == 422
    assert "pageToken" in response.json()["details"]


async def test_filters(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    records = sandbox.dataset.listing("bird")
    sample = records[3]
    by_channel = await walk(client, channelId=str(sample.channel_id), limit=99)
    assert {i["id"] for i in by_channel} == {
        r.id for r in records if r.channel_id == sample.channel_id
    }
    incoming = await walk(client, direction="incoming", limit=99)
    assert incoming and all(i["direction"] == "incoming" for i in incoming)
    by_source = await walk(client, sourceId=str(sample.conference_id or sample.call_id))
    assert sample.id in {i["id"] for i in by_source}
    by_from = await walk(client, **{"from": sample.originator})
    assert by_from and all(
        i["originator"]["number"]["identity"] == sample.originator for i in by_from
    )
    by_to = await walk(client, to=sample.receiver)
    assert sample.id in {i["id"] for i in by_to}


async def test_time_window_keeps_start_inclusive_end_exclusive(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    records = sandbox.dataset.listing("bird")
    start, end = records[20].created, records[5].created
    params = {"startAt": start.isoformat(), "endAt": end.isoformat(), "limit": "99"}
    items = await walk(client, **params)
    assert {i["id"] for i in items} == {r.id for r in records if start <= r.created < end}
    assert records[20].id in {i["id"] for i in items}


async def test_bad_direction_or_time_is_422(client: httpx.AsyncClient) -> None:
    for params in ({"direction": "sideways"}, {"startAt": "yesterday"}):
        response = await client.get(BASE, params=params, headers=HEADERS)
        assert response.status_code == 422


async def test_delete_is_204_then_404(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    rid = sandbox.sample_ids()["bird"]
    deleted = await client.delete(f"{BASE}/{rid}", headers=HEADERS)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await client.get(f"{BASE}/{rid}", headers=HEADERS)).status_code == 404
    again = await client.delete(f"{BASE}/{rid}", headers=HEADERS)
    assert (again.status_code, again.json()["code"]) == (404, "NotFound")
    assert rid not in {item["id"] for item in await walk(client, limit=99)}
    assert (await client.get(f"{BASE}/{rid}.mp3", headers=HEADERS)).status_code == 404


async def test_media_redirects_to_a_presigned_mp3(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    location = await redirect_location(client, rid)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in location and "X-Amz-Expires=600" in location
    audio = await client.get(location)
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/mpeg"
    assert audio.content[:2] == b"\xff\xe3"


async def test_media_of_unready_recording_is_404(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = next(r for r in sandbox.dataset.listing("bird") if r.status == "completed")
    response = await client.get(f"{BASE}/{record.id}.mp3", headers=HEADERS)
    assert (response.status_code, response.json()["code"]) == (404, "NotFound")


async def test_presigned_url_rejects_an_authorization_header(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    location = await redirect_location(client, sandbox.sample_ids()["bird"])
    response = await client.get(location, headers=HEADERS)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/xml"
    assert "<Code>InvalidArgument</Code>" in response.text
    assert "Only one auth mechanism allowed" in response.text


async def test_presigned_url_expires(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    location = await redirect_location(client, sandbox.sample_ids()["bird"])
    minted = sandbox.now()
    sandbox.clock = lambda: minted + timedelta(seconds=DEMO.presign_ttl + 1)
    response = await client.get(location)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in response.text


async def test_tampered_presigned_url_is_403(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    location = await redirect_location(client, sandbox.sample_ids()["bird"])
    response = await client.get(location.replace("X-Amz-Expires=600", "X-Amz-Expires=9999"))
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    unsigned = location.split("?")[0]
    assert (await client.get(unsigned)).status_code == 403


async def test_presigned_url_can_live_on_another_host() -> None:
    config = SandboxConfig(s3_base_url="http://s3.sandbox.test/", presign_ttl=60)
    app = create_sandbox_app(config)
    rid = app.state.sandbox.sample_ids()["bird"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.sandbox.test") as client:
        location = await redirect_location(client, rid)
        assert location.startswith("http://s3.sandbox.test/_s3/voice-recordings/")
        assert "X-Amz-Expires=60&" in location
        assert (await client.get(location)).status_code == 200
        listed = (await client.get(f"{BASE}/{rid}", headers=HEADERS)).json()
        assert listed["url"].startswith("http://s3.sandbox.test/")
