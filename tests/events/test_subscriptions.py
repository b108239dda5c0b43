"""``recordingEvents`` over a real WebSocket to the gateway under uvicorn: who may subscribe
(``connection_init``), what each subscriber receives (its tenant's events, filtered, with
``missed`` after a burst its queue could not hold), and the bounds on a connection."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.access.keys import new_key
from app.events import RecordingEventType
from app.models import Provider
from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.access.support import TenantSpec, write_config
from tests.access.test_jwt import AUDIENCE, ISSUER, pem, token
from tests.events.support import (
    EVENTS,
    init,
    publish,
    receive,
    recording_event,
    running_gateway,
    socket,
    subscribe,
    until_active,
)

pytestmark = pytest.mark.anyio

ACME, GLOBEX, MEDIA_ONLY = new_key(), new_key(), new_key()
TENANTS = {
    "acme": TenantSpec(ACME),
    "globex": TenantSpec(GLOBEX),
    "media": TenantSpec(MEDIA_ONLY, scopes=["media:read"]),
}
#: Small enough for a burst to overflow it.
QUEUE = 3


def settings_for(tmp_path: Path, **env: str) -> Settings:
    config = write_config(tmp_path / "gateway.toml", SandboxConfig(), TENANTS)
    return Settings.from_env(
        {**config, "GATEWAY_SUBSCRIPTION_QUEUE": str(QUEUE), "GATEWAY_METRICS_TOKEN": "", **env}
    )


@pytest.fixture
def gateway_url(tmp_path: Path) -> Iterator[str]:
    with running_gateway(settings_for(tmp_path)) as url:
        yield url


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def subscribed(
    ws: ClientConnection,
    client: httpx.AsyncClient,
    tenant: str,
    *,
    op: str = "1",
    variables: dict[str, Any] | None = None,
    open_before: int = 0,
) -> None:
    """Subscribe on ``ws`` and wait until the gateway holds it."""
    await subscribe(ws, op, EVENTS, variables)
    await until_active(client, tenant, open_before + 1)


def event_of(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    event: dict[str, Any] = message["payload"]["data"]["recordingEvents"]
    return event


async def closed_with(ws: ClientConnection, payload: dict[str, Any] | None) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await init(ws, payload)
        await receive(ws)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_subscriber_authenticated_in_connection_init_receives_its_events(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url) as ws:
        assert await init(ws, bearer(ACME)) == {"type": "connection_ack"}
        await subscribed(ws, client, "acme")
        await publish(client, recording_event("acme", "RE1", call_id="CA1", duration=42))
        event = event_of(await receive(ws))
    assert event["type"] == "COMPLETED"
    assert event["missed"] is None
    assert event["recording"] == {
        "provider": "TWILIO",
        "id": "RE1",
        "callId": "CA1",
        "status": "COMPLETED",
        "durationSeconds": 42,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["at"])


async def test_apollo_and_graphiql_send_the_credentials_under_headers(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url) as ws:
        assert await init(ws, {"headers": {"authorization": f"Bearer {ACME}"}}) == {
            "type": "connection_ack"
        }
        await subscribed(ws, client, "acme")
        await publish(client, recording_event("acme", "RE2"))
        assert event_of(await receive(ws))["recording"]["id"] == "RE2"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Basic {ACME}"},
        {"Authorization": 42},
        {"headers": {"Authorization": "Bearer not-a-key"}},
        bearer(MEDIA_ONLY),  # valid, but without recordings:read
    ],
    ids=["no-payload", "empty", "bad-key", "not-bearer", "not-a-string", "bad-header", "scope"],
)
async def test_missing_bad_or_insufficient_credentials_close_with_4403(
    gateway_url: str, payload: dict[str, Any] | None
) -> None:
    async with socket(gateway_url) as ws:
        assert await closed_with(ws, payload) == 4403


async def test_subscribing_before_connection_init_is_refused(gateway_url: str) -> None:
    async with socket(gateway_url) as ws:
        await subscribe(ws, "1")
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_tenant_never_sees_another_tenants_events(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url) as acme, socket(gateway_url) as globex:
        await init(acme, bearer(ACME))
        await init(globex, bearer(GLOBEX))
        await subscribed(acme, client, "acme")
        await subscribed(globex, client, "globex")
        await publish(
            client,
            recording_event("globex", "RE-globex-1"),
            recording_event("acme", "RE-acme-1"),
            recording_event("globex", "RE-globex-2"),
        )
        assert event_of(await receive(acme))["recording"]["id"] == "RE-acme-1"
        got = [event_of(await receive(globex))["recording"]["id"] for _ in range(2)]
        assert got == ["RE-globex-1", "RE-globex-2"]
        # acme's next event is its own next one: nothing of globex's came in between.
        await publish(client, recording_event("acme", "RE-acme-2"))
        assert event_of(await receive(acme))["recording"]["id"] == "RE-acme-2"


async def test_the_filter_selects_by_provider_call_and_type(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    wanted = {
        "providers": ["BIRD", "SIGNALWIRE"],
        "callId": "CA-wanted",
        "types": ["COMPLETED", "FAILED"],
    }
    async with socket(gateway_url) as ws:
        await init(ws, bearer(ACME))
        await subscribed(ws, client, "acme", variables={"filter": wanted})
        await publish(
            client,
            recording_event(
                "acme", "wrong-provider", provider=Provider.TWILIO, call_id="CA-wanted"
            ),
            recording_event("acme", "wrong-call", provider=Provider.BIRD, call_id="CA-other"),
            recording_event(
                "acme",
                "wrong-type",
                provider=Provider.BIRD,
                call_id="CA-wanted",
                kind=RecordingEventType.STATUS_CHANGED,
            ),
            recording_event("acme", "match-1", provider=Provider.BIRD, call_id="CA-wanted"),
            recording_event(
                "acme",
                "match-2",
                provider=Provider.SIGNALWIRE,
                call_id="CA-wanted",
                kind=RecordingEventType.FAILED,
            ),
        )
        first, second = event_of(await receive(ws)), event_of(await receive(ws))
    assert [first["recording"]["id"], second["recording"]["id"]] == ["match-1", "match-2"]
    assert second["type"] == "FAILED"
    assert first["missed"] is None and second["missed"] is None


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        ({"providers": []}, "`providers` must name at least one value"),
        ({"types": []}, "`types` must name at least one value"),
        ({"callId": " "}, "`callId` must not be empty"),
    ],
)
async def test_a_filter_that_can_never_match_is_bad_user_input(
    gateway_url: str, filter_: dict[str, Any], message: str
) -> None:
    async with socket(gateway_url) as ws:
        await init(ws, bearer(ACME))
        await subscribe(ws, "1", EVENTS, {"filter": filter_})
        answer = await receive(ws)
    errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
    assert errors[0]["message"].startswith(message)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_burst_over_the_queue_drops_the_oldest_and_says_how_many(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url) as ws:
        await init(ws, bearer(ACME))
        await subscribed(ws, client, "acme")
        # Ten events published in a row, before the gateway's sender runs: the subscriber's
        # queue (3) keeps the last three.
        await publish(client, *(recording_event("acme", f"RE{n}") for n in range(10)))
        got = [event_of(await receive(ws)) for _ in range(QUEUE)]
        assert [e["recording"]["id"] for e in got] == ["RE7", "RE8", "RE9"]
        assert [e["missed"] for e in got] == [7, None, None]
        # The count is reported once: the next event misses nothing.
        await publish(client, recording_event("acme", "RE10"))
        assert event_of(await receive(ws))["missed"] is None


async def test_events_the_filter_drops_never_count_as_missed(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url) as ws:
        await init(ws, bearer(ACME))
        await subscribed(ws, client, "acme", variables={"filter": {"providers": ["BIRD"]}})
        burst = [
            recording_event("acme", f"RE{n}", provider=Provider.TWILIO if n % 2 else Provider.BIRD)
            for n in range(10)
        ]
        await publish(client, *burst)  # 5 Bird events (0, 2, 4, 6, 8) into a queue of 3
        got = [event_of(await receive(ws)) for _ in range(QUEUE)]
    assert [e["recording"]["id"] for e in got] == ["RE4", "RE6", "RE8"]
    assert got[0]["missed"] == 2


async def test_media_links_in_events_point_at_the_gateway_over_http(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    query = """subscription {
      recordingEvents { recording { proxy: mediaUrl direct: mediaUrl(delivery: DIRECT) } }
    }"""
    async with socket(gateway_url) as ws:
        await init(ws, bearer(ACME))
        await subscribe(ws, "1", query)
        await until_active(client, "acme", 1)
        await publish(client, recording_event("acme", "RE" + "0" * 32))
        answer = await receive(ws)
    payload = answer["payload"]
    assert payload["data"]["recordingEvents"]["recording"]["proxy"].startswith(
        f"{gateway_url}/media/"
    )
    assert payload["data"]["recordingEvents"]["recording"]["direct"] is None
    [error] = payload["errors"]
    assert error["path"] == ["recordingEvents", "recording", "direct"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_only_subscriptions_go_over_the_socket_and_not_over_http(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url) as ws:
        await init(ws, bearer(ACME))
        await subscribe(ws, "1", "{ __typename }")
        answer = await receive(ws)
    assert answer["payload"]["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    over_http = await client.post(
        "/graphql", json={"query": EVENTS}, headers={"authorization": f"Bearer {ACME}"}
    )
    [error] = over_http.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in error["message"]


async def test_the_legacy_graphql_ws_protocol_is_not_served(gateway_url: str) -> None:
    from websockets.asyncio.client import connect

    from tests.events.support import ws_url

    async with connect(ws_url(gateway_url), subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406


async def test_a_connection_runs_a_bounded_number_of_subscriptions(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, GATEWAY_WS_MAX_SUBSCRIPTIONS="2")
    with running_gateway(settings) as url:
        async with httpx.AsyncClient(base_url=url) as client, socket(url) as ws:
            await init(ws, bearer(ACME))
            await subscribed(ws, client, "acme", op="1")
            await subscribed(ws, client, "acme", op="2", open_before=1)
            await subscribe(ws, "3")
            answer = await receive(ws)
    assert answer["type"] == "error" and answer["id"] == "3"
    assert answer["payload"][0]["message"] == "Subscription limit reached"


async def test_a_socket_that_never_sends_connection_init_is_closed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, GATEWAY_WS_INIT_TIMEOUT="0.2")
    with running_gateway(settings) as url:
        async with socket(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


async def test_the_request_limits_apply_to_subscriptions(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, GATEWAY_MAX_DEPTH="2", GATEWAY_MAX_ALIASES="2")
    deep = "subscription { recordingEvents { recording { price { amount } } } }"
    aliased = "subscription { recordingEvents { a: type b: type c: type } }"
    with running_gateway(settings) as url:
        async with socket(url) as ws:
            await init(ws, bearer(ACME))
            await subscribe(ws, "deep", deep)
            await subscribe(ws, "aliased", aliased)
            answers = {m["id"]: m for m in [await receive(ws), await receive(ws)]}
    for op, words in (("deep", "depth"), ("aliased", "aliases")):
        assert answers[op]["type"] == "error", answers[op]
        [error] = answers[op]["payload"]
        assert words in error["message"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_jwt_authenticates_with_the_scopes_it_grants(tmp_path: Path) -> None:
    signer = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "idp.pem"
    key_file.write_bytes(pem(signer))
    jwt = (
        f'\n[auth.jwt]\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n'
        f'public_key_file = "{key_file}"\n'
    )
    config = write_config(tmp_path / "gateway.toml", SandboxConfig(), TENANTS, jwt=jwt)
    reader = token(signer, "ES256", scope="recordings:read")
    media_only = token(signer, "ES256", scope="media:read")
    with running_gateway(Settings.from_env(config)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            async with socket(url) as ws:
                assert await init(ws, bearer(reader)) == {"type": "connection_ack"}
                await subscribed(ws, client, "acme")
                await publish(client, recording_event("acme", "RE-jwt"))
                assert event_of(await receive(ws))["recording"]["id"] == "RE-jwt"
            async with socket(url) as ws:  # a trusted token without recordings:read
                assert await closed_with(ws, bearer(media_only)) == 4403
            async with socket(url) as ws:  # signed by nobody the gateway trusts
                forged = token(ec.generate_private_key(ec.SECP256R1()), "ES256")
                assert await closed_with(ws, bearer(forged)) == 4403


async def test_the_handshakes_authorization_header_serves_when_the_payload_has_none(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url, additional_headers=bearer(ACME)) as ws:
        assert await init(ws, {}) == {"type": "connection_ack"}
        await subscribed(ws, client, "acme")
    async with socket(gateway_url, additional_headers=bearer(ACME)) as ws:
        # Credentials in the payload win: these are refused.
        assert await closed_with(ws, {"Authorization": "Bearer not-a-key"}) == 4403


async def test_a_subscription_ends_with_its_socket_or_its_complete(
    gateway_url: str, client: httpx.AsyncClient
) -> None:
    async with socket(gateway_url) as ws:
        await init(ws, bearer(ACME))
        await subscribed(ws, client, "acme", op="1")
        await subscribed(ws, client, "acme", op="2", open_before=1)
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await until_active(client, "acme", 1)
    await until_active(client, "acme", 0)


async def test_a_browser_page_of_another_origin_is_refused_unless_cors_allows_it(
    tmp_path: Path,
) -> None:
    allowed = "https://app.example.com"
    settings = settings_for(tmp_path, GATEWAY_CORS_ORIGINS=allowed)
    with running_gateway(settings) as url:
        async with socket(url, origin=allowed) as ws:
            assert await init(ws, bearer(ACME)) == {"type": "connection_ack"}
        with pytest.raises(InvalidStatus) as refused:
            async with socket(url, origin="https://evil.example.com"):
                pass
    assert refused.value.response.status_code == 403


async def test_with_an_allowlist_only_its_subscriptions_run(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"events": EVENTS}))
    settings = settings_for(
        tmp_path,
        GATEWAY_PERSISTED_QUERIES="allowlist",
        GATEWAY_PERSISTED_QUERIES_FILE=str(manifest),
    )
    other = "subscription { recordingEvents { type } }"
    with running_gateway(settings) as url:
        async with httpx.AsyncClient(base_url=url) as client, socket(url) as ws:
            await init(ws, bearer(ACME))
            await subscribe(ws, "other", other)
            refused = await receive(ws)
            assert await receive(ws) == {"id": "other", "type": "complete"}
            await subscribed(ws, client, "acme", op="listed")
            await publish(client, recording_event("acme", "RE1"))
            assert event_of(await receive(ws))["recording"]["id"] == "RE1"
    assert refused["id"] == "other"
    errors = refused["payload"]["errors"] if refused["type"] == "next" else refused["payload"]
    assert errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"


async def test_a_gateway_shutting_down_closes_its_sockets_as_a_restart(tmp_path: Path) -> None:
    """1012 (service restart): a client such as graphql-ws reconnects, to another replica."""
    async with contextlib.AsyncExitStack() as stack:
        running = running_gateway(settings_for(tmp_path))
        url = running.__enter__()
        try:
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url))
            ws = await stack.enter_async_context(socket(url))
            await init(ws, bearer(ACME))
            await subscribed(ws, client, "acme")
        finally:
            running.__exit__(None, None, None)  # uvicorn shuts down, its lifespan too
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
