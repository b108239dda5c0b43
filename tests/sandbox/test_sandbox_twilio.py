"""The Twilio sandbox: auth, errors, paging, filters, soft delete, media auth."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from app.sandbox import DEMO, Sandbox, SandboxConfig, create_sandbox_app

pytestmark = pytest.mark.anyio

ACCOUNT = DEMO.twilio_account_sid
BASE = f"/2010-04-01/Accounts/{ACCOUNT}"
AUTH = (ACCOUNT, DEMO.twilio_auth_token)
KEY_AUTH = (DEMO.twilio_api_key, DEMO.twilio_api_secret)


async def walk(client: httpx.AsyncClient, **params: str | int) -> list[dict[str, object]]:
    """Every recording, following next_page_uri verbatim."""
    page = (await client.get(f"{BASE}/Recordings.json", params=params, auth=AUTH)).json()
    items = list(page["recordings"])
    while page["next_page_uri"] is not None:
        page = (await client.get(page["next_page_uri"], auth=AUTH)).json()
        items += page["recordings"]
    return items


def created(item: dict[str, object]) -> datetime:
    return parsedate_to_datetime(str(item["date_created"]))


async def test_missing_or_wrong_auth_is_401_code_20003(client: httpx.AsyncClient) -> None:
    for auth in (None, (ACCOUNT, "wrong"), (DEMO.twilio_api_key, DEMO.twilio_auth_token)):
        response = await client.get(f"{BASE}/Recordings.json", auth=auth)
        assert response.status_code == 401
        assert response.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_api_key_auth_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/Recordings.json", auth=KEY_AUTH)
    assert response.status_code == 200


async def test_other_account_in_path_is_403(client: httpx.AsyncClient) -> None:
    other = "AC" + "1" * 32
    response = await client.get(f"/2010-04-01/Accounts/{other}/Recordings.json", auth=AUTH)
    assert response.status_code == 403
    assert response.json()["code"] == 20403


async def test_unknown_recording_is_404_naming_the_path(client: httpx.AsyncClient) -> None:
    sid = "RE" + "f" * 32
    response = await client.get(f"{BASE}/Recordings/{sid}.json", auth=AUTH)
    assert response.status_code == 404
    assert response.json() == {
        "code": 20404,
        "message": f"The requested resource {BASE}/Recordings/{sid}.json was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


async def test_fetch_renders_twilio_types(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sid = sandbox.sample_ids()["twilio"]
    body = (await client.get(f"{BASE}/Recordings/{sid}.json", auth=AUTH)).json()
    record = sandbox.dataset.get("twilio", sid)
    assert record is not None
    assert body["duration"] == str(record.duration)
    assert isinstance(body["channels"], int)
    assert re.fullmatch(r"-\d\.\d{5}", body["price"])
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", body["start_time"])
    assert body["uri"] == f"{BASE}/Recordings/{sid}.json"
    assert body["media_url"] == f"http://sandbox.test{BASE}/Recordings/{sid}"


async def test_in_progress_duration_is_minus_one(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = next(r for r in sandbox.dataset.listing("twilio") if r.status == "in-progress")
    body = (await client.get(f"{BASE}/Recordings/{record.id}.json", auth=AUTH)).json()
    assert body["duration"] == "-1"
    assert body["price"] is None


async def test_walking_pages_yields_each_item_once_newest_first(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    items = await walk(client, PageSize=7)
    sids = [item["sid"] for item in items]
    visible = [r.id for r in sandbox.dataset.listing("twilio") if r.status != "deleted"]
    assert sids == visible
    assert len(set(sids)) == len(sids)
    stamps = [created(item) for item in items]
    assert stamps == sorted(stamps, reverse=True)


async def test_page_envelope(client: httpx.AsyncClient) -> None:
    first = (await client.get(f"{BASE}/Recordings.json?PageSize=4", auth=AUTH)).json()
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 4, 0, 3)
    assert len(first["recordings"]) == 4
    assert first["previous_page_uri"] is None
    assert "PageToken=PA" in first["next_page_uri"]
    assert first["first_page_uri"] == f"{BASE}/Recordings.json?PageSize=4&Page=0"
    second = (await client.get(first["next_page_uri"], auth=AUTH)).json()
    assert (second["page"], second["start"], second["end"]) == (1, 4, 7)
    back = (await client.get(second["previous_page_uri"], auth=AUTH)).json()
    assert back["recordings"] == first["recordings"]


async def test_paging_survives_deletes_between_pages(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    first = (await client.get(f"{BASE}/Recordings.json?PageSize=5", auth=AUTH)).json()
    last = first["recordings"][-1]["sid"]
    sandbox.dataset.delete("twilio", last)
    second = (await client.get(first["next_page_uri"], auth=AUTH)).json()
    expected = [r.id for r in sandbox.dataset.listing("twilio") if r.status != "deleted"][4:9]
    assert [item["sid"] for item in second["recordings"]] == expected


@pytest.mark.parametrize("size", ["0", "1001", "many"])
async def test_bad_page_size_is_400(client: httpx.AsyncClient, size: str) -> None:
    response = await client.get(f"{BASE}/Recordings.json", params={"PageSize": size}, auth=AUTH)
    assert response.status_code == 400


async def test_page_size_bounds_are_accepted(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    visible = [r for r in sandbox.dataset.listing("twilio") if r.status != "deleted"]
    for size in (1, 1000):
        response = await client.get(f"{BASE}/Recordings.json?PageSize={size}", auth=AUTH)
        assert len(response.json()["recordings"]) == min(size, len(visible))


@pytest.mark.parametrize("token", ["PAnot-a-sid", "garbage", "PA", "RE" + "0" * 32])
async def test_bad_page_token_is_400_code_21481(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get(f"{BASE}/Recordings.json", params={"PageToken": token}, auth=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == 21481


async def test_call_and_conference_filters(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    record = next(r for r in sandbox.dataset.listing("twilio") if r.conference_id)
    by_call = await walk(client, CallSid=str(record.call_id))
    assert by_call and all(item["call_sid"] == record.call_id for item in by_call)
    by_conference = await walk(client, ConferenceSid=str(record.conference_id))
    assert record.id in {item["sid"] for item in by_conference}
    assert all(item["conference_sid"] == record.conference_id for item in by_conference)


async def test_filters_are_kept_in_page_links(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    url = f"{BASE}/Recordings.json?PageSize=1&DateCreated%3E=2026-01-01"
    page = (await client.get(url, auth=AUTH)).json()
    assert "DateCreated%3E=2026-01-01" in page["next_page_uri"]


async def test_date_created_bounds_are_inclusive_days(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    everything = await walk(client, PageSize=1000)
    day = created(everything[len(everything) // 2]).date()
    after = await walk(client, **{"DateCreated>": day.isoformat(), "PageSize": "1000"})
    before = await walk(client, **{"DateCreated<": day.isoformat(), "PageSize": "1000"})
    on = await walk(client, DateCreated=day.isoformat(), PageSize=1000)
    assert {i["sid"] for i in after} == {i["sid"] for i in everything if created(i).date() >= day}
    assert {i["sid"] for i in before} == {i["sid"] for i in everything if created(i).date() <= day}
    assert {i["sid"] for i in on} == {i["sid"] for i in everything if created(i).date() == day}
    assert on


async def test_bad_date_is_400(client: httpx.AsyncClient) -> None:
    params = {"DateCreated>": "yesterday"}
    response = await client.get(f"{BASE}/Recordings.json", params=params, auth=AUTH)
    assert response.status_code == 400


async def test_soft_deleted_only_with_include_soft_deleted(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    deleted = next(r for r in sandbox.dataset.listing("twilio") if r.status == "deleted")
    url = f"{BASE}/Recordings/{deleted.id}.json"
    assert (await client.get(url, auth=AUTH)).status_code == 404
    shown = await client.get(url, params={"IncludeSoftDeleted": "true"}, auth=AUTH)
    assert shown.json()["status"] == "deleted"
    listed = await walk(client, IncludeSoftDeleted="true", PageSize=1000)
    assert deleted.id in {item["sid"] for item in listed}
    assert deleted.id not in {item["sid"] for item in await walk(client, PageSize=1000)}


async def test_delete_is_204_then_404_and_soft_deleted(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sid = sandbox.sample_ids()["twilio"]
    url = f"{BASE}/Recordings/{sid}.json"
    response = await client.delete(url, auth=AUTH)
    assert (response.status_code, response.content) == (204, b"")
    assert (await client.get(url, auth=AUTH)).status_code == 404
    assert (await client.delete(url, auth=AUTH)).status_code == 404
    kept = await client.get(url, params={"IncludeSoftDeleted": "true"}, auth=AUTH)
    assert kept.json()["status"] == "deleted"
    assert (await client.get(f"{BASE}/Recordings/{sid}", auth=AUTH)).status_code == 404


async def test_a_soft_deleted_recording_is_readable_but_not_deletable_again(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sid = sandbox.sample_ids()["twilio"]
    url = f"{BASE}/Recordings/{sid}.json"
    assert (await client.delete(url, auth=AUTH)).status_code == 204
    soft = {"IncludeSoftDeleted": "true"}
    again = await client.delete(url, params=soft, auth=AUTH)
    assert again.status_code == 404
    body = again.json()
    assert (body["code"], body["status"]) == (20404, 404)
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20404"
    assert (await client.get(url, params=soft, auth=AUTH)).json()["sid"] == sid
    media = await client.get(f"{BASE}/Recordings/{sid}.mp3", params=soft, auth=AUTH)
    assert media.status_code == 404
    assert sid not in {item["sid"] for item in await walk(client, PageSize=1000)}


async def test_media_requires_auth_by_default(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sid = sandbox.sample_ids()["twilio"]
    assert (await client.get(f"{BASE}/Recordings/{sid}")).status_code == 401
    response = await client.get(f"{BASE}/Recordings/{sid}.mp3", auth=AUTH)
    assert (response.status_code, response.headers["content-type"]) == (200, "audio/mpeg")


async def test_media_auth_can_be_switched_off() -> None:
    app = create_sandbox_app(SandboxConfig(twilio_media_auth=False))
    sid = app.state.sandbox.sample_ids()["twilio"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        response = await client.get(f"{BASE}/Recordings/{sid}.wav")
        assert (response.status_code, response.headers["content-type"]) == (200, "audio/x-wav")
        assert (await client.get(f"{BASE}/Recordings/{sid}.json")).status_code == 401


async def test_media_of_unready_recording_is_404(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = next(r for r in sandbox.dataset.listing("twilio") if r.status == "processing")
    response = await client.get(f"{BASE}/Recordings/{record.id}", auth=AUTH)
    assert response.status_code == 404
    assert response.json()["code"] == 20404


async def test_put_record_is_served(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sid = sandbox.sample_ids()["twilio"]
    original = sandbox.dataset.get("twilio", sid)
    assert original is not None
    later = sandbox.dataset.listing("twilio")[0].created + timedelta(days=1)
    newest = replace(original, id="RE" + "a" * 32, created=later)
    sandbox.dataset.put(newest)
    page = (await client.get(f"{BASE}/Recordings.json?PageSize=1", auth=AUTH)).json()
    assert page["recordings"][0]["sid"] == newest.id
    assert created(page["recordings"][0]) == newest.created.astimezone(UTC)
