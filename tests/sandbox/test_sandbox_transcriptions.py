"""The sandbox's transcription endpoints answer in each provider's wire format.

The recorded examples they are held to: ``twilio/transcriptions_page.json`` is the ``readFull``
example of Twilio's OpenAPI (``twilio-oai``, ``ListRecordingTranscriptionResponse``);
``signalwire/transcriptions_page.json`` is built from the examples of SignalWire's
compatibility OpenAPI (``TranscriptionListResponse``, ``Transcription``; its example ids are not
UUIDs, so hex ones stand in); ``bird/transcriptions_list.json`` and
``bird/transcription_accepted.json`` are the examples of Bird's Transcriptions API docs
(docs.bird.com, "List Transcriptions" and "Initiate a Transcription").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.sandbox import DEMO, Sandbox
from app.sandbox.transcriptions import COMPLETES_AFTER, DONE, SandboxTranscription, new_id

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[1] / "fixtures"
BASES = {
    "twilio": f"/2010-04-01/Accounts/{DEMO.twilio_account_sid}",
    "signalwire": f"/api/laml/2010-04-01/Accounts/{DEMO.signalwire_project_id}",
}
AUTH = {
    "twilio": (DEMO.twilio_account_sid, DEMO.twilio_auth_token),
    "signalwire": (DEMO.signalwire_project_id, DEMO.signalwire_api_token),
}
BIRD = f"/workspaces/{DEMO.bird_workspace_id}"
BIRD_AUTH = {"Authorization": f"AccessKey {DEMO.bird_access_key}"}


def fixture(provider: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / provider / name).read_text())
    return loaded


def same_fields(answer: dict[str, Any], recorded: dict[str, Any]) -> None:
    """The same field names, each of the same JSON type where both have a value."""
    assert set(answer) == set(recorded), set(answer) ^ set(recorded)
    for name, value in recorded.items():
        if value is not None and answer[name] is not None:
            assert type(answer[name]) is type(value), (name, answer[name], value)


#: Before any recording the sandbox seeds (its data spans the days before today).
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def extra(provider: str, rid: str, account: str, index: int) -> SandboxTranscription:
    """One more completed transcription of ``rid``, older than any seeded one."""
    long_ago = LONG_AGO
    return SandboxTranscription(
        provider=provider,
        id=new_id(provider, f"extra:{rid}:{index}"),
        recording_id=rid,
        account=account,
        status=DONE[provider],
        created=long_ago - timedelta(minutes=index + 1),
        updated=long_ago,
        text=f"extra {index}",
    )


def transcribed(sandbox: Sandbox, provider: str, *, statuses: int = 1) -> str:
    """A recording of account 0 with at least ``statuses`` seeded transcriptions."""
    return next(
        r.id
        for r in sandbox.dataset.listing(provider)
        if len(sandbox.transcriptions.of(provider, r.id, sandbox.now())) >= statuses
    )


@pytest.mark.parametrize("provider", ["twilio", "signalwire"])
async def test_compat_transcriptions_match_the_recorded_page(
    provider: str, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, provider)
    url = f"{BASES[provider]}/Recordings/{rid}/Transcriptions.json"
    answer = (await client.get(url, auth=AUTH[provider])).json()
    recorded = fixture(provider, "transcriptions_page.json")
    same_fields(answer, recorded)
    assert answer["transcriptions"]
    for item in answer["transcriptions"]:
        same_fields(item, recorded["transcriptions"][0])
        assert item["recording_sid"] == rid
        assert item["uri"].endswith(f"/Transcriptions/{item['sid']}.json")
    expected = sandbox.transcriptions.of(provider, rid, sandbox.now())
    assert [t["sid"] for t in answer["transcriptions"]] == [t.id for t in expected]


async def test_twilio_ids_and_texts_are_twilios(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, "twilio")
    url = f"{BASES['twilio']}/Recordings/{rid}/Transcriptions.json"
    items = (await client.get(url, auth=AUTH["twilio"])).json()["transcriptions"]
    for item in items:
        assert item["sid"].startswith("TR") and len(item["sid"]) == 34
        assert (item["transcription_text"] is not None) == (item["status"] == "completed")


@pytest.mark.parametrize("provider", ["twilio", "signalwire"])
async def test_compat_pages_follow_next_page_uri(
    provider: str, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, provider)
    record = sandbox.dataset.get(provider, rid)
    assert record is not None
    for index in range(5):
        sandbox.transcriptions.add(extra(provider, rid, record.account, index))
    url: str | None = f"{BASES[provider]}/Recordings/{rid}/Transcriptions.json?PageSize=2"
    seen: list[str] = []
    while url is not None:
        page = (await client.get(url, auth=AUTH[provider])).json()
        assert page["page_size"] == 2
        seen += [t["sid"] for t in page["transcriptions"]]
        url = page["next_page_uri"]
    expected = sandbox.transcriptions.of(provider, rid, sandbox.now())
    assert seen == [t.id for t in expected] and len(seen) >= 6


@pytest.mark.parametrize("provider", ["twilio", "signalwire"])
async def test_compat_errors_are_the_providers(
    provider: str, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, provider)
    url = f"{BASES[provider]}/Recordings/{rid}/Transcriptions.json"
    token = await client.get(f"{url}?PageToken=PAnope", auth=AUTH[provider])
    assert token.status_code == 400 and token.json()["code"] == 21481
    unknown = (
        sandbox.dataset.listing("twilio")[0].id if provider == "signalwire" else "RE" + "0" * 32
    )
    missing = await client.get(
        f"{BASES[provider]}/Recordings/{unknown}/Transcriptions.json", auth=AUTH[provider]
    )
    body = missing.json()
    assert missing.status_code == 404
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["code"] == 20404 and body["status"] == 404
    denied = await client.get(url, auth=(AUTH[provider][0], "wrong"))
    assert denied.status_code == 401 and denied.json()["code"] == 20003


async def test_bird_lists_a_recordings_transcriptions(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, "bird")
    answer = await client.get(f"{BIRD}/recordings/{rid}/transcriptions", headers=BIRD_AUTH)
    body = answer.json()
    recorded = fixture("bird", "transcriptions_list.json")
    assert answer.status_code == 200 and set(body) <= {"results", "nextPageToken"}
    for item in body["results"]:
        same_fields(item, recorded["results"][0])
        assert item["recordingId"] == rid


async def test_bird_pages_with_next_page_token(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    rid = transcribed(sandbox, "bird")
    for index in range(4):
        sandbox.transcriptions.add(extra("bird", rid, DEMO.bird_workspace_id, index))
    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        answer = await client.get(
            f"{BIRD}/recordings/{rid}/transcriptions", params=params, headers=BIRD_AUTH
        )
        body = answer.json()
        seen += [t["id"] for t in body["results"]]
        if not body.get("nextPageToken"):
            break
        params = {"limit": "2", "pageToken": body["nextPageToken"]}
    assert seen == [t.id for t in sandbox.transcriptions.of("bird", rid, sandbox.now())]
    workspace = await client.get(f"{BIRD}/transcriptions", params={"limit": 99}, headers=BIRD_AUTH)
    assert set(seen) <= {t["id"] for t in workspace.json()["results"]}


async def test_bird_accepts_a_transcription_then_completes_it(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = next(r.id for r in sandbox.dataset.listing("bird") if r.ready)
    posted = await client.post(
        f"{BIRD}/recordings/{rid}/transcriptions", json={"locale": "de-DE"}, headers=BIRD_AUTH
    )
    assert posted.status_code == 202
    body = posted.json()
    same_fields(body, fixture("bird", "transcription_accepted.json"))
    assert body["status"] == "accepted" and body["locale"] == "de-DE"
    assert body["recordingId"] == rid
    item = f"{BIRD}/transcriptions/{body['id']}"
    text = await client.get(f"{item}.txt", headers=BIRD_AUTH)
    assert text.status_code == 404 and text.json()["code"] == "NotFound"
    later = sandbox.now() + COMPLETES_AFTER
    sandbox.clock = lambda: later
    metadata = (await client.get(item, headers=BIRD_AUTH)).json()
    assert metadata["status"] == "available"
    text = await client.get(f"{item}.txt", headers=BIRD_AUTH)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.text


async def test_bird_refuses_what_bird_refuses(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    ready = next(r.id for r in sandbox.dataset.listing("bird") if r.ready)
    waiting = next(r.id for r in sandbox.dataset.listing("bird") if not r.ready)
    url = f"{BIRD}/recordings/{{}}/transcriptions"
    bad_locale = await client.post(url.format(ready), json={"locale": "xx-XX"}, headers=BIRD_AUTH)
    assert bad_locale.status_code == 422
    assert (
        bad_locale.json()["code"] == "InvalidPayload" and "locale" in bad_locale.json()["details"]
    )
    not_ready = await client.post(url.format(waiting), json={"locale": "en-US"}, headers=BIRD_AUTH)
    assert not_ready.status_code == 422 and "recordingId" in not_ready.json()["details"]
    missing = await client.get(
        url.format("00000000-0000-4000-8000-000000000000"), headers=BIRD_AUTH
    )
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"
    denied = await client.get(url.format(ready), headers={"Authorization": "AccessKey nope"})
    assert denied.status_code == 401 and denied.json()["code"] == "Unauthorized"
