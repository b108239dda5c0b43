"""The sandbox app as a whole: request log, faults, latency, unknown routes, mount prefix."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from app.sandbox import DEMO, Fault, Sandbox, SandboxConfig, create_sandbox_app, middleware

pytestmark = pytest.mark.anyio

TWILIO = f"/2010-04-01/Accounts/{DEMO.twilio_account_sid}"
TWILIO_AUTH = (DEMO.twilio_account_sid, DEMO.twilio_auth_token)
SIGNALWIRE = f"/api/laml/2010-04-01/Accounts/{DEMO.signalwire_project_id}"
SIGNALWIRE_AUTH = (DEMO.signalwire_project_id, DEMO.signalwire_api_token)
BIRD = f"/workspaces/{DEMO.bird_workspace_id}/recordings"
BIRD_HEADERS = {"Authorization": f"AccessKey {DEMO.bird_access_key}"}


async def test_every_request_is_logged_in_order(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    await client.get(f"{TWILIO}/Recordings.json", params={"PageSize": 2}, auth=TWILIO_AUTH)
    await client.get(BIRD, headers={**BIRD_HEADERS, "X-Trace": "abc"})
    await client.get("/nowhere")
    first, second, third = sandbox.requests
    assert (first.method, first.path, first.query) == (
        "GET",
        f"{TWILIO}/Recordings.json",
        "PageSize=2",
    )
    assert first.url == f"http://sandbox.test{TWILIO}/Recordings.json?PageSize=2"
    assert first.headers["authorization"].startswith("Basic ")
    assert "authorization" not in repr(first) or "<redacted>" in repr(first)
    assert DEMO.bird_access_key not in repr(second)
    assert second.headers["x-trace"] == "abc" and second.provider == "bird"
    assert (third.path, third.provider) == ("/nowhere", None)
    assert sandbox.requests_to("twilio") == [first]


async def test_fault_answers_the_provider_error_then_clears(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    fault = sandbox.faults.inject("twilio", 429, times=2, retry_after=3)
    assert isinstance(fault, Fault)
    for _ in range(2):
        response = await client.get(f"{TWILIO}/Recordings.json", auth=TWILIO_AUTH)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert response.json() == {
            "code": 20429,
            "message": "Too Many Requests",
            "more_info": "https://www.twilio.com/docs/errors/20429",
            "status": 429,
        }
    assert (await client.get(f"{TWILIO}/Recordings.json", auth=TWILIO_AUTH)).status_code == 200
    assert len(sandbox.requests) == 3


async def test_faults_are_per_provider(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.inject("bird", 503)
    sandbox.faults.inject("signalwire", 500)
    twilio = await client.get(f"{TWILIO}/Recordings.json", auth=TWILIO_AUTH)
    assert twilio.status_code == 200
    bird = await client.get(BIRD, headers=BIRD_HEADERS)
    assert (bird.status_code, bird.json()["code"]) == (503, "InternalServerError")
    assert "retry-after" not in bird.headers
    signalwire = await client.get(f"{SIGNALWIRE}/Recordings.json", auth=SIGNALWIRE_AUTH)
    assert (signalwire.status_code, signalwire.json()["code"]) == (500, 20500)


async def test_a_fault_that_reached_the_provider_lets_it_act_first(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """A 504 from a proxy whose origin did the work: the DELETE deleted, its 204 is lost."""
    rid = sandbox.sample_ids()["bird"]
    sandbox.faults.inject("bird", 504, reached=True)
    lost = await client.delete(f"{BIRD}/{rid}", headers=BIRD_HEADERS)
    assert (lost.status_code, lost.json()["code"]) == (504, "InternalServerError")
    assert sandbox.dataset.get("bird", rid) is None
    again = await client.delete(f"{BIRD}/{rid}", headers=BIRD_HEADERS)
    assert again.status_code == 404
    # Without ``reached``, the provider never saw it.
    other = sandbox.sample_ids()["bird"]
    sandbox.faults.inject("bird", 504)
    await client.delete(f"{BIRD}/{other}", headers=BIRD_HEADERS)
    assert sandbox.dataset.get("bird", other) is not None


async def test_bird_429_body(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.inject("bird", 429, retry_after=1)
    response = await client.get(BIRD, headers=BIRD_HEADERS)
    assert response.status_code == 429
    assert response.json()["code"] == "TooManyRequests"
    assert response.headers["retry-after"] == "1"


async def test_fault_body_override(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.inject("twilio", 200, body=b"<html>oops</html>", content_type="text/html")
    response = await client.get(f"{TWILIO}/Recordings.json", auth=TWILIO_AUTH)
    assert response.status_code == 200
    assert response.content == b"<html>oops</html>"
    assert response.headers["content-type"] == "text/html"


async def test_s3_faults_and_clear(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.faults.inject("s3", 503)
    sandbox.faults.inject("twilio", 500, times=5)
    assert len(sandbox.faults.pending()) == 2
    sandbox.faults.clear()
    assert sandbox.faults.pending() == []
    assert (await client.get(f"{TWILIO}/Recordings.json", auth=TWILIO_AUTH)).status_code == 200
    sandbox.faults.inject("s3", 503)
    rid = sandbox.sample_ids()["bird"]
    location = (await client.get(f"{BIRD}/{rid}.mp3", headers=BIRD_HEADERS)).headers["location"]
    response = await client.get(location)
    assert response.status_code == 503 and "<Code>SlowDown</Code>" in response.text


def test_inject_rejects_unknown_providers() -> None:
    sandbox = create_sandbox_app().state.sandbox
    with pytest.raises(ValueError, match="unknown provider"):
        sandbox.faults.inject("vonage", 500)
    with pytest.raises(ValueError, match="times"):
        sandbox.faults.inject("bird", 500, times=0)


async def test_latency_setting_is_accepted() -> None:
    app = create_sandbox_app(SandboxConfig(latency=0.001))
    assert app.state.sandbox.config.latency == 0.001
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        response = await client.get(f"{TWILIO}/Recordings.json", auth=TWILIO_AUTH)
        assert response.status_code == 200
    with pytest.raises(ValueError, match="latency"):
        SandboxConfig(latency=-1)


async def test_unknown_route_says_what_it_received(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{TWILIO}/Calls.json?To=%2B1", content=b"x")
    assert response.status_code == 404
    body = response.json()
    assert body["received"] == {
        "method": "POST",
        "path": f"{TWILIO}/Calls.json",
        "query": "To=%2B1",
    }
    assert f"POST {TWILIO}/Calls.json?To=%2B1" in body["message"]
    assert "GET /2010-04-01/Accounts/{account}/Recordings.json" in body["routes"]
    assert "DELETE|GET /workspaces/{workspace}/recordings/{name}" in body["routes"]


async def test_wrong_method_on_a_known_path_is_loud(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{TWILIO}/Recordings.json", auth=TWILIO_AUTH)
    assert response.status_code == 404
    assert response.json()["received"]["method"] == "POST"


async def test_urls_honour_the_mount_prefix() -> None:
    app = create_sandbox_app()
    newest = app.state.sandbox.dataset.listing("twilio")[0].id
    sid = app.state.sandbox.sample_ids()["twilio"]  # the newest whose media is ready
    transport = httpx.ASGITransport(app=app, root_path="/sandbox")
    async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
        url = f"/sandbox{TWILIO}/Recordings.json?PageSize=1"
        page = (await client.get(url, auth=TWILIO_AUTH)).json()
        assert page["uri"].startswith(f"/sandbox{TWILIO}/Recordings.json?")
        assert page["next_page_uri"].startswith(f"/sandbox{TWILIO}/")
        item = page["recordings"][0]
        assert item["uri"] == f"/sandbox{TWILIO}/Recordings/{newest}.json"
        assert item["media_url"] == f"http://demo.test/sandbox{TWILIO}/Recordings/{newest}"
        assert (await client.get(page["next_page_uri"], auth=TWILIO_AUTH)).status_code == 200
        item = (
            await client.get(f"/sandbox{TWILIO}/Recordings/{sid}.json", auth=TWILIO_AUTH)
        ).json()
        assert item["uri"] == f"/sandbox{TWILIO}/Recordings/{sid}.json"
        assert item["media_url"] == f"http://demo.test/sandbox{TWILIO}/Recordings/{sid}"
        media = await client.get(item["media_url"], auth=TWILIO_AUTH)
        assert media.status_code == 200
        rid = app.state.sandbox.sample_ids()["bird"]
        location = (await client.get(f"/sandbox{BIRD}/{rid}.mp3", headers=BIRD_HEADERS)).headers[
            "location"
        ]
        assert location.startswith("http://demo.test/sandbox/_s3/")
        assert (await client.get(location)).status_code == 200
        assert app.state.sandbox.requests[0].route_path == f"{TWILIO}/Recordings.json"


async def test_works_mounted_inside_another_app() -> None:
    sandbox_app = create_sandbox_app()
    outer = Starlette(routes=[Mount("/sandbox", app=sandbox_app)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
        page = (await client.get(f"/sandbox{TWILIO}/Recordings.json", auth=TWILIO_AUTH)).json()
        sid = sandbox_app.state.sandbox.sample_ids()["twilio"]  # its media is ready
        item = next(r for r in page["recordings"] if r["sid"] == sid)
        assert item["uri"].startswith(f"/sandbox{TWILIO}/Recordings/")
        assert item["media_url"].startswith(f"http://demo.test/sandbox{TWILIO}/")
        media = await client.head(item["media_url"], auth=TWILIO_AUTH)
        assert media.status_code == 200
        missing = await client.get("/sandbox/nothing")
        assert missing.json()["received"]["path"] == "/nothing"


async def test_request_log_keeps_the_newest(
    client: httpx.AsyncClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(middleware, "REQUEST_LOG_LIMIT", 3)
    for n in range(5):
        await client.get(f"/nowhere/{n}")
    assert [seen.path for seen in sandbox.requests] == [f"/nowhere/{n}" for n in (2, 3, 4)]


def test_sample_ids_are_ready_recordings() -> None:
    sandbox: Sandbox = create_sandbox_app().state.sandbox
    samples = sandbox.sample_ids()
    assert set(samples) == {"twilio", "signalwire", "bird"}
    for provider, rid in samples.items():
        record = sandbox.dataset.get(provider, rid)
        assert record is not None and record.ready


def test_config_repr_hides_secrets() -> None:
    shown = repr(DEMO)
    for secret in (
        DEMO.twilio_auth_token,
        DEMO.twilio_api_secret,
        DEMO.signalwire_api_token,
        DEMO.bird_access_key,
    ):
        assert secret not in shown
    assert DEMO.twilio_account_sid in shown
