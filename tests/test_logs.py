"""Logs an operator can use (app.logs, app.requestid): a request id on every answer and
every line of its request, ``GATEWAY_LOG_FORMAT=json`` one object per line, no media token
in the access log, and a provider breaking off mid-stream as one WARNING, no traceback.

The last three run the real CLI (``python -m app serve``) and read what it prints.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from app.access.keys import key_hash, new_key
from app.errors import ConfigError
from app.logs import JsonFormatter, TenantFilter, redact
from app.models import Provider
from app.requestid import request_id_of
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.media.support import mint, mint_sync, token_of
from tests.servers import serve
from tests.support import gateway_client, sandbox_env
from tests.test_cli import server

QUERY = '{ recording(provider: TWILIO, id: "RE04a3d4b79350a180c170af92def4cbd2") { id } }'
ORIGIN = "http://app.example:5173"
HEX_ID = re.compile(r"[0-9a-f]{32}")


# --- the id itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["abc", "A.b_c:d-9", "x" * 128])
def test_a_well_formed_id_is_kept(given: str) -> None:
    assert request_id_of(given) == given


@pytest.mark.parametrize("given", [None, "", "x" * 129, "a b", "line\nbreak", 'quote"', "é"])
def test_anything_else_is_replaced_by_a_new_one(given: str | None) -> None:
    made = request_id_of(given)
    assert HEX_ID.fullmatch(made)
    assert made != request_id_of(given)


# --- on every answer --------------------------------------------------------------------------


def gateway(
    config: SandboxConfig, sandbox_app: Starlette, **env: str
) -> Any:  # an async context manager of httpx.AsyncClient
    settings = Settings.from_env(sandbox_env(config) | env)
    return gateway_client(settings, httpx.ASGITransport(app=sandbox_app))


def echoed(response: httpx.Response, sent: str) -> None:
    assert response.headers["x-request-id"] == sent


def generated(response: httpx.Response) -> None:
    assert HEX_ID.fullmatch(response.headers["x-request-id"]), response.headers


@pytest.mark.anyio
async def test_ids_on_graphql_answers_and_refusals(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    key = new_key()
    env = {
        "GATEWAY_API_KEYS": f"sha256:{key_hash(key)}",
        "GATEWAY_MAX_BODY_BYTES": "256",
        "GATEWAY_CORS_ORIGINS": ORIGIN,
    }
    auth = {"authorization": f"Bearer {key}"}
    async with gateway(sandbox_config, sandbox_app, **env) as client:
        ok = await client.post(
            "/graphql", json={"query": QUERY}, headers=auth | {"x-request-id": "r-200"}
        )
        unauthenticated = await client.post(
            "/graphql", json={"query": QUERY}, headers={"x-request-id": "r-401"}
        )
        too_big = await client.post(
            "/graphql", json={"query": QUERY + " " * 300}, headers=auth | {"x-request-id": "r-413"}
        )
        preflight = await client.options(
            "/graphql",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "x-request-id": "r-cors",
            },
        )
        malformed = await client.post(
            "/graphql", json={"query": QUERY}, headers=auth | {"x-request-id": "no spaces"}
        )
        none = await client.get("/livez")
    assert (ok.status_code, unauthenticated.status_code, too_big.status_code) == (200, 401, 413)
    assert preflight.status_code == 200
    echoed(ok, "r-200")
    echoed(unauthenticated, "r-401")
    echoed(too_big, "r-413")
    echoed(preflight, "r-cors")
    generated(malformed)
    generated(none)


@pytest.mark.anyio
async def test_ids_on_media_answers_and_the_lines_they_log(
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.handler.addFilter(TenantFilter())
    async with gateway(sandbox_config, sandbox_app) as client:
        url = await mint(client, Provider.TWILIO, sandbox.sample_ids()["twilio"])
        served = await client.get(url, headers={"x-request-id": "m-200"})
        refused = await client.get("/media/not-a-token", headers={"x-request-id": "m-403"})
        sandbox.faults.inject("twilio", 500)
        with caplog.at_level(logging.WARNING, logger="app.media.proxy"):
            failed = await client.get(url, headers={"x-request-id": "m-502"})
    assert (served.status_code, refused.status_code, failed.status_code) == (200, 403, 502)
    echoed(served, "m-200")
    echoed(refused, "m-403")
    echoed(failed, "m-502")
    [line] = [r for r in caplog.records if r.name == "app.media.proxy"]
    assert getattr(line, "request_id", None) == "m-502"
    assert getattr(line, "tenant", None) == "default"


# --- formats and redaction ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "read"), [(None, "text"), ("text", "text"), ("JSON", "json")])
def test_the_log_format_setting(value: str | None, read: str) -> None:
    env = {} if value is None else {"GATEWAY_LOG_FORMAT": value}
    assert Settings.from_env(env).log_format == read


def test_an_unknown_log_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_LOG_FORMAT is text or json"):
        Settings.from_env({"GATEWAY_LOG_FORMAT": "xml"})


@pytest.mark.parametrize(("value", "read"), [(None, True), ("on", True), ("OFF", False)])
def test_the_access_log_setting(value: str | None, read: bool) -> None:
    env = {} if value is None else {"GATEWAY_ACCESS_LOG": value}
    assert Settings.from_env(env).access_log is read


def test_an_unknown_access_log_switch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_ACCESS_LOG must be on or off"):
        Settings.from_env({"GATEWAY_ACCESS_LOG": "1"})


def test_with_the_access_log_off_a_request_prints_no_line_and_the_rest_still_does() -> None:
    sandbox_app = create_sandbox_app(CONFIG)
    rid = sandbox_app.state.sandbox.sample_ids()["twilio"]
    query = f'{{ recording(provider: TWILIO, id: "{rid}") {{ id }} }}'
    with serve(sandbox_app) as sandbox_url:
        env = sandbox_env(CONFIG, sandbox_url) | {
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_ACCESS_LOG": "off",
        }
        with server("serve", env=env) as running, httpx.Client(base_url=running.url) as client:
            answered = client.post("/graphql", json={"query": query})
            assert answered.json() == {"data": {"recording": {"id": rid}}}
            assert client.get("/livez").status_code == 200
    lines = [json.loads(line) for line in running.lines if line.strip()]
    assert any("Uvicorn running on" in line["message"] for line in lines)
    assert [line for line in lines if line["logger"] == "uvicorn.access"] == []


def test_redact_hides_media_tokens_only() -> None:
    assert redact("/media/abc.DEF-123_x") == "/media/<redacted>"
    assert redact("/media/abc?download=1") == "/media/<redacted>?download=1"
    assert redact("/graphql?query=x") == "/graphql?query=x"


def test_json_lines_carry_the_access_fields() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/livez", "1.1", 200),
        None,
    )
    TenantFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO" and line["logger"] == "uvicorn.access"
    assert line["message"] == '127.0.0.1:5 - "GET /livez HTTP/1.1" 200'
    assert (line["method"], line["path"], line["status"]) == ("GET", "/livez", 200)
    assert line["request_id"] == "-" and line["tenant"] == "-"
    assert {"time"} <= line.keys()


# --- the real process -------------------------------------------------------------------------

CONFIG = SandboxConfig()
#: Bytes of a WAV download after which the sandbox below breaks off.
CUT_AFTER = 32768


class CutWav:
    """The sandbox, but each WAV body breaks off after ``CUT_AFTER`` bytes: the connection is
    closed under a response that announced more (a provider failing mid-stream)."""

    class Stop(Exception):
        pass

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(".wav"):
            await self.app(scope, receive, send)
            return
        sent = 0

        async def cutting(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                if sent >= CUT_AFTER:
                    raise CutWav.Stop
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, cutting)
        except CutWav.Stop:
            return  # unfinished: uvicorn closes the connection


def run_json_gateway() -> tuple[list[dict[str, Any]], list[str]]:
    """Run the CLI with GATEWAY_LOG_FORMAT=json over the cutting sandbox: mint an MP3 and a
    WAV link, download the MP3 whole and the WAV until the cut. Every line it printed, each
    parsed as JSON (the test fails on one that is not), and the two links' tokens."""
    sandbox_app = create_sandbox_app(CONFIG)
    rid = sandbox_app.state.sandbox.sample_ids()["twilio"]
    with serve(CutWav(sandbox_app)) as sandbox_url:
        env = sandbox_env(CONFIG, sandbox_url) | {"GATEWAY_LOG_FORMAT": "json"}
        with server("serve", env=env) as running, httpx.Client(base_url=running.url) as client:
            mp3 = mint_sync(client, Provider.TWILIO, rid)
            wav = mint_sync(client, Provider.TWILIO, rid, fmt="WAV")
            whole = client.get(mp3, headers={"x-request-id": "media-whole"})
            assert whole.status_code == 200 and whole.content
            assert whole.headers["x-request-id"] == "media-whole"
            with client.stream("GET", wav, headers={"x-request-id": "media-cut"}) as cut:
                assert cut.status_code == 200
                assert cut.headers["x-request-id"] == "media-cut"
                announced = int(cut.headers["content-length"])
                received = 0
                with pytest.raises(httpx.RemoteProtocolError):
                    for chunk in cut.iter_raw():
                        received += len(chunk)
            assert 0 < received < announced
    # The process has stopped: its output is complete.
    lines = [json.loads(line) for line in running.lines if line.strip()]
    return lines, [token_of(mp3), token_of(wav)]


@pytest.fixture(scope="module")
def json_run() -> tuple[list[dict[str, Any]], list[str]]:
    return run_json_gateway()


def test_every_line_is_a_json_object_with_the_fields(
    json_run: tuple[list[dict[str, Any]], list[str]],
) -> None:
    lines, _ = json_run
    assert any("Uvicorn running on" in line["message"] for line in lines)
    for line in lines:
        assert {"time", "level", "logger", "message", "tenant", "request_id"} <= line.keys()
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert len(access) == 4  # two GraphQL requests, two downloads
    assert all(HEX_ID.fullmatch(line["request_id"]) for line in access[:2])
    assert [(line["request_id"], line["method"], line["status"]) for line in access[2:]] == [
        ("media-whole", "GET", 200),
        ("media-cut", "GET", 200),
    ]
    assert all(line["tenant"] == "default" for line in access)


def test_media_tokens_never_reach_the_log(
    json_run: tuple[list[dict[str, Any]], list[str]],
) -> None:
    lines, tokens = json_run
    printed = json.dumps(lines)
    for token in tokens:
        assert token not in printed
    media = [
        line for line in lines if line["logger"] == "uvicorn.access" and "/media/" in line["path"]
    ]
    assert [line["path"] for line in media] == ["/media/<redacted>"] * 2
    assert all("/media/<redacted>" in line["message"] for line in media)


def test_a_provider_cut_mid_stream_is_one_warning_and_no_traceback(
    json_run: tuple[list[dict[str, Any]], list[str]],
) -> None:
    lines, _ = json_run
    of_cut = [line for line in lines if line["request_id"] == "media-cut"]
    [warning] = [line for line in of_cut if line["level"] == "WARNING"]
    assert warning["logger"] == "app.media.proxy"
    assert "twilio" in warning["message"]
    assert re.search(r"after \d+ bytes sent", warning["message"])
    assert [line["level"] for line in of_cut] == ["INFO", "WARNING"]  # its access line, then it
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert "Traceback" not in json.dumps(lines)
    assert all("exception" not in line for line in lines)
