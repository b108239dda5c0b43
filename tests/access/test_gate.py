"""The gate of /graphql: credentials (401), size (413) and shape (400), before any GraphQL
work and without an upstream request; never a 500 or a traceback in the log."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.access.keys import key_hash, new_key
from app.main import create_app
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.access.support import bearer
from tests.servers import serve
from tests.support import RECORDING_QUERY, gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

KEY = new_key()
SAMPLE = '{ recording(provider: TWILIO, id: "RE04a3d4b79350a180c170af92def4cbd2") { id } }'


@pytest.fixture
def keyed_settings(sandbox_config: SandboxConfig) -> Settings:
    env = sandbox_env(sandbox_config) | {"GATEWAY_API_KEYS": f"sha256:{key_hash(KEY)}"}
    return Settings.from_env(env)


@pytest.fixture
async def keyed(
    keyed_settings: Settings, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(keyed_settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client


def refusal(response: httpx.Response) -> str:
    """The code of a refused request, checking the shape every refusal shares."""
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    [error] = body["errors"]
    assert set(body) == {"errors"} and isinstance(error["message"], str)
    code: str = error["extensions"]["code"]
    return code


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Basic {KEY}", "Bearer rgk_not-a-key", "Bearer a.b.c", KEY],
    ids=["none", "empty", "no-token", "blank-token", "basic", "unknown", "jwt-shaped", "bare"],
)
async def test_missing_or_unknown_credentials_are_401(
    keyed: httpx.AsyncClient, sandbox: Sandbox, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    response = await keyed.post("/graphql", json={"query": SAMPLE}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert refusal(response) == "UNAUTHENTICATED"
    assert KEY not in response.text
    assert sandbox.requests == []


async def test_a_valid_key_is_served_over_post_and_get(keyed: httpx.AsyncClient) -> None:
    posted = await keyed.post("/graphql", json={"query": SAMPLE}, headers=bearer(KEY))
    assert posted.status_code == 200 and "errors" not in posted.json(), posted.text
    got = await keyed.get("/graphql", params={"query": SAMPLE}, headers=bearer(KEY))
    assert got.json() == posted.json()
    anonymous = await keyed.get("/graphql", params={"query": SAMPLE})
    assert anonymous.status_code == 401


async def test_the_scheme_is_case_insensitive(keyed: httpx.AsyncClient) -> None:
    headers = {"authorization": f"bearer {KEY}"}
    response = await keyed.post("/graphql", json={"query": SAMPLE}, headers=headers)
    assert response.status_code == 200


async def test_graphiql_needs_no_credentials(keyed: httpx.AsyncClient) -> None:
    response = await keyed.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_without_client_auth_the_one_tenant_is_open(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/graphql", json={"query": SAMPLE})
    assert response.status_code == 200 and "errors" not in response.json()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'"x"', "application/json"),
        (b"42", "application/json"),
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (b'[{"query": "{ __typename }"}]', "application/json"),
        (b"\xff\xfe{", "application/json"),
        (b'{"query": "\xff"}', "application/json"),
        (b"{", "application/json"),
        (b"", "application/json"),
        (b'{"query": 1}', "application/json"),
        (b"{}", "application/json"),
        (b'{"query": null}', "application/json"),
        (b'{"query": "  "}', "application/json"),
        (b'{"query": "{ __typename }", "variables": []}', "application/json"),
        (b'{"query": "{ __typename }", "operationName": {}}', "application/json"),
        (b'{"query": "{ __typename }", "extensions": "x"}', "application/json"),
        (b'{"query": "{ __typename }"}', "text/plain"),
    ],
)
async def test_a_body_that_is_not_a_graphql_request_is_400(
    keyed: httpx.AsyncClient,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str,
) -> None:
    headers = bearer(KEY) | {"content-type": content_type}
    with caplog.at_level(logging.WARNING):
        response = await keyed.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400
    assert refusal(response) == "BAD_REQUEST"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert sandbox.requests == []


@pytest.mark.parametrize(
    "params",
    [
        {"query": SAMPLE, "variables": "{"},
        {"query": SAMPLE, "variables": "[1]"},
        {"variables": "{}"},
        {"query": ""},
    ],
)
async def test_bad_get_parameters_are_400(keyed: httpx.AsyncClient, params: dict[str, str]) -> None:
    headers = bearer(KEY) | {"accept": "application/json"}
    response = await keyed.get("/graphql", params=params, headers=headers)
    assert response.status_code == 400
    assert refusal(response) == "BAD_REQUEST"


async def test_credentials_are_checked_before_the_body(keyed: httpx.AsyncClient) -> None:
    response = await keyed.post("/graphql", content=b"x" * 100_000)
    assert response.status_code == 401


async def test_a_body_over_the_limit_is_413_by_its_length(
    keyed: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    response = await keyed.post(
        "/graphql", content=b" " * 65537, headers=bearer(KEY) | {"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert refusal(response) == "PAYLOAD_TOO_LARGE"
    assert sandbox.requests == []


async def test_a_streamed_body_is_cut_at_the_limit(
    keyed_settings: Settings, sandbox_app: Starlette
) -> None:
    """Chunked, with no Content-Length: refused once the bytes read pass the limit, without
    waiting for (or reading) the rest."""
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(1)
            yield b" " * 16384

    async with gateway_client(keyed_settings, httpx.ASGITransport(app=sandbox_app)) as client:
        response = await client.post(
            "/graphql",
            content=endless(),
            headers=bearer(KEY) | {"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert len(sent) <= 6  # 65536 / 16384 + 1, and what the transport had in hand


@pytest.fixture
def live_gateway(keyed_settings: Settings, sandbox_app: Starlette) -> Iterator[str]:
    app = create_app(keyed_settings, transport=httpx.ASGITransport(app=sandbox_app))
    with serve(app) as url:
        yield url


def test_a_large_body_is_refused_over_a_real_socket_before_it_is_sent(live_gateway: str) -> None:
    """2 MB announced: the 413 comes back while the client is still sending, unread."""
    host, port = live_gateway.removeprefix("http://").split(":")
    size = 2 * 2**20
    head = (
        f"POST /graphql HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b" " * 1024)
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413 ")
    assert "PAYLOAD_TOO_LARGE" in answer


async def test_a_full_query_works_with_a_key(keyed: httpx.AsyncClient) -> None:
    variables = {"provider": "BIRD", "id": "fbdf1270-e047-4279-bdb1-7b8fe972ef9d"}
    response = await keyed.post(
        "/graphql", json={"query": RECORDING_QUERY, "variables": variables}, headers=bearer(KEY)
    )
    assert response.json()["data"]["recording"]["id"] == variables["id"]


async def test_what_strawberry_refuses_leaves_in_the_same_typed_shape(
    keyed: httpx.AsyncClient,
) -> None:
    """What ``Schema.execute`` refuses before running anything (Strawberry's own view would
    answer it in plain text): the gateway keeps one error shape. Names the exceptions the
    view relies on (``CannotGetOperationTypeError``, ``InvalidOperationTypeError``)."""
    unknown = {"query": "query A { __typename }", "operationName": "B"}
    response = await keyed.post("/graphql", json=unknown, headers=bearer(KEY))
    assert (response.status_code, refusal(response)) == (400, "BAD_REQUEST")
    assert "Unknown operation" in response.text
    headers = bearer(KEY) | {"accept": "application/json"}
    response = await keyed.get("/graphql", params={"query": "mutation { x }"}, headers=headers)
    assert (response.status_code, refusal(response)) == (400, "BAD_REQUEST")
    assert "mutations are not allowed when using GET" in response.text


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD"])
async def test_other_methods_are_405(keyed: httpx.AsyncClient, method: str) -> None:
    response = await keyed.request(method, "/graphql", headers=bearer(KEY))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    if method != "HEAD":
        assert refusal(response) == "METHOD_NOT_ALLOWED"
