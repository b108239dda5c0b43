"""A frontend on another origin, in Debian's Chromium: ``fetch()`` of a query, ``<audio>`` that
plays and seeks, and Web Audio reading the bytes, all through CORS (app.cors).

Everything runs on real loopback sockets: the sandbox providers, the gateway (pointed at
them, ``GATEWAY_CORS_ORIGINS`` naming one page server), and two servers of the same static
page, one of the allowed origin and one of another. Every request the browser makes to a
host other than loopback is aborted and fails the test.

The seek tests use recordings of an hour: Chromium buffers a few MB ahead of the playhead,
so seeking to the middle of an hour (7 MB into an MP3, 57 MB into a mono WAV) needs a new
``Range`` request, which is what a player does with a real call recording.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    Page,
    ProxySettings,
    Request,
    Response,
    Route,
)
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse
from starlette.routing import Route as HttpRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.main import create_app
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.servers import RawServer, raw_server, serve
from tests.support import sandbox_env

CONFIG = SandboxConfig()
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: The length given to the recordings the seek tests play (see the module docstring).
LONG = 3600

#: The frontend: runs the query of its ``?query=`` against ``?gateway=`` and shows what came
#: back (or the error) in #result; plays ``?audio=``; offers Range reads and Web Audio
#: decoding to the test.
PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>A frontend</title><link rel="icon" href="data:,"></head>
<body>
<pre id="result"></pre>
<audio id="player" crossorigin="anonymous" preload="auto"></audio>
<script>
const params = new URLSearchParams(location.search);
const player = document.getElementById("player");

function show(kind, text) {
  const result = document.getElementById("result");
  result.textContent = text;
  result.dataset.kind = kind;
}

async function runQuery() {
  try {
    const response = await fetch(params.get("gateway") + "/graphql", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Request-ID": "frontend-1"},
      body: JSON.stringify({query: params.get("query")}),
    });
    show("data", JSON.stringify((await response.json()).data));
  } catch (error) {
    show(error.name, error.message);
  }
}

async function readRange(url, range) {
  const response = await fetch(url, {headers: {Range: range}});
  const body = await response.arrayBuffer();
  return {
    status: response.status,
    contentRange: response.headers.get("Content-Range"),
    acceptRanges: response.headers.get("Accept-Ranges"),
    contentLength: response.headers.get("Content-Length"),
    length: body.byteLength,
  };
}

async function decodedSeconds(url) {
  const body = await (await fetch(url)).arrayBuffer();
  const audio = await new OfflineAudioContext(1, 1, 8000).decodeAudioData(body);
  return audio.duration;
}

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return error.name;
  }
}

if (params.has("query")) runQuery();
if (params.has("audio")) player.src = params.get("audio");
</script>
</body>
</html>
"""


async def _page(request: HttpRequest) -> HTMLResponse:
    return HTMLResponse(PAGE)


@dataclass(frozen=True)
class Seen:
    """A request as the gateway answered it."""

    method: str
    path: str
    range: str | None
    status: int


def watched(app: ASGIApp, seen: list[Seen]) -> ASGIApp:
    """``app``, noting each request's method, path, Range header and answer status."""

    async def watching(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def note(message: Message) -> None:
            if message["type"] == "http.response.start":
                asked = Headers(scope=scope).get("range")
                seen.append(Seen(scope["method"], scope["path"], asked, message["status"]))
            await send(message)

        await app(scope, receive, note)

    return watching


@dataclass
class Live:
    sandbox: Sandbox
    gateway: str
    allowed: str
    other: str
    seen: list[Seen] = field(default_factory=list)

    def query(self, document: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.post(
            f"{self.gateway}/graphql", json={"query": document}
        ).json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def recording(self, provider: Provider, rid: str, fmt: str) -> tuple[str, int]:
        """A PROXY media URL of the recording, minted through the API, and its duration."""
        found = self.query(
            f'{{ recording(provider: {provider.name}, id: "{rid}") '
            f"{{ durationSeconds mediaUrl(format: {fmt}, delivery: PROXY) }} }}"
        )["recording"]
        return found["mediaUrl"], found["durationSeconds"]

    def ready_ids(self, provider: Provider) -> list[str]:
        """Ready recordings of the demo account, shortest first."""
        dataset = self.sandbox.dataset
        account = self.sandbox.account(provider.value)
        ready = [r for r in dataset.listing(provider.value, account) if r.ready]
        return [r.id for r in sorted(ready, key=lambda r: (r.duration, r.id))]

    def page_url(self, origin: str, **params: str) -> str:
        return f"{origin}/?{urlencode(params)}"


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    sandbox_app = create_sandbox_app(CONFIG)
    sandbox: Sandbox = sandbox_app.state.sandbox
    for provider, rid in sandbox.sample_ids().items():
        record = sandbox.dataset.get(provider, rid)
        assert record is not None
        sandbox.dataset.put(replace(record, duration=LONG))
    frontend = Starlette(routes=[HttpRoute("/", _page)])
    with serve(sandbox_app) as sandbox_url, serve(frontend) as allowed, serve(frontend) as other:
        env = sandbox_env(CONFIG, sandbox_url) | {"GATEWAY_CORS_ORIGINS": allowed}
        seen: list[Seen] = []
        with serve(watched(create_app(Settings.from_env(env)), seen)) as gateway:
            yield Live(sandbox, gateway, allowed, other, seen)


# The module's browser is tests/browser/conftest.py's (Debian's chromium, autoplay allowed).


@dataclass
class Tab:
    """A page whose requests beyond loopback are aborted and listed in ``offsite``, and the
    browser's view of each response it got."""

    page: Page
    offsite: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)


@pytest.fixture
def tab(browser: Browser, live: Live) -> Iterator[Tab]:
    context = browser.new_context()
    page = context.new_page()
    tab = Tab(page)

    def guard(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            tab.offsite.append(request.url)
            route.abort()

    context.route("**/*", guard)

    def note(response: Response) -> None:
        tab.responses.append(response)

    page.on("response", note)
    live.seen.clear()
    yield tab
    context.close()
    assert tab.offsite == [], f"requests beyond loopback: {tab.offsite}"


@dataclass
class Unrouted:
    """A page without Playwright's routing, so that Chromium sends its own preflights; any
    request beyond loopback goes to a proxy that refuses it and counts the connection."""

    page: Page
    refuser: RawServer
    #: Connections to the refusing proxy the test expects (its own check of the guard).
    expected_refusals: int = 0


@pytest.fixture
def unrouted(browser: Browser, live: Live) -> Iterator[Unrouted]:
    def refuse(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    with raw_server(refuse) as refuser:
        # Loopback is named in the bypass list, so it alone goes direct (Playwright otherwise
        # sends loopback through the proxy too).
        proxy = ProxySettings(server=refuser.url, bypass="127.0.0.1,localhost,[::1]")
        context = browser.new_context(proxy=proxy)
        live.seen.clear()
        unrouted = Unrouted(context.new_page(), refuser)
        yield unrouted
        context.close()
    assert refuser.connections == unrouted.expected_refusals, "a request went beyond loopback"


def result(page: Page) -> tuple[str, str]:
    """What the page shows once its query is done: its kind ("data" or an error's name)."""
    shown = page.wait_for_selector("#result[data-kind]")
    assert shown is not None
    return shown.get_attribute("data-kind") or "", shown.text_content() or ""


# --- the guards themselves -----------------------------------------------------------------

#: An address that is not loopback (TEST-NET-1, RFC 5737): never reached, the guards stop it.
OFFSITE = "http://192.0.2.1/recordings.json"


def test_the_route_aborts_a_request_beyond_loopback(live: Live, tab: Tab) -> None:
    tab.page.goto(live.page_url(live.allowed))
    assert tab.page.evaluate("url => failure(fetch(url))", OFFSITE) == "TypeError"
    assert tab.offsite == [OFFSITE]
    tab.offsite.clear()  # seen: the fixture's own check passes


def test_the_proxy_refuses_a_request_beyond_loopback(live: Live, unrouted: Unrouted) -> None:
    unrouted.page.goto(live.page_url(live.allowed))
    assert unrouted.page.evaluate("url => failure(fetch(url))", OFFSITE) == "TypeError"
    assert unrouted.refuser.connections == 1
    unrouted.expected_refusals = 1


# --- fetch() of a query --------------------------------------------------------------------


def test_a_page_of_an_allowed_origin_reads_a_query(live: Live, tab: Tab) -> None:
    rid = live.sandbox.sample_ids()["twilio"]
    query = f'{{ recording(provider: TWILIO, id: "{rid}") {{ id provider durationSeconds }} }}'
    tab.page.goto(live.page_url(live.allowed, gateway=live.gateway, query=query))
    kind, text = result(tab.page)
    assert kind == "data", text
    assert json.loads(text) == {
        "recording": {"id": rid, "provider": "TWILIO", "durationSeconds": LONG}
    }
    # Playwright answers CORS preflights itself while a route is set (crNetworkManager fulfils
    # them with 204 and allow-all headers): only the query reaches the gateway. The real
    # preflight is in test_chromium_s_preflight_reaches_the_gateway below.
    assert [(s.method, s.status) for s in live.seen if s.path == "/graphql"] == [("POST", 200)]


def test_a_page_of_another_origin_is_blocked(live: Live, tab: Tab) -> None:
    tab.page.goto(live.page_url(live.other, gateway=live.gateway, query="{ __typename }"))
    kind, text = result(tab.page)
    # The answer has no Access-Control-Allow-Origin for this origin: fetch() rejects.
    assert kind == "TypeError", text


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "other"])
def test_chromium_s_preflight_reaches_the_gateway(
    live: Live, unrouted: Unrouted, allowed: bool
) -> None:
    origin = live.allowed if allowed else live.other
    unrouted.page.goto(live.page_url(origin, gateway=live.gateway, query="{ __typename }"))
    kind, text = result(unrouted.page)
    graphql = [(s.method, s.status) for s in live.seen if s.path == "/graphql"]
    # A JSON body and X-Request-ID are not "simple": Chromium asks first, and sends the query
    # only if the preflight allows it.
    if allowed:
        assert (kind, json.loads(text)) == ("data", {"__typename": "Query"})
        assert graphql == [("OPTIONS", 200), ("POST", 200)]
    else:
        assert kind == "TypeError", text
        assert graphql == [("OPTIONS", 400)]


# --- <audio> --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "fmt"),
    [
        (Provider.TWILIO, "MP3"),
        (Provider.BIRD, "MP3"),
        (Provider.TWILIO, "WAV"),
        (Provider.SIGNALWIRE, "WAV"),
    ],
    ids=["twilio-mp3", "bird-mp3", "twilio-wav", "signalwire-wav"],
)
def test_audio_plays_and_seeks_with_a_range_request(
    live: Live, tab: Tab, provider: Provider, fmt: str
) -> None:
    url, seconds = live.recording(provider, live.sandbox.sample_ids()[provider.value], fmt)
    assert seconds == LONG
    page = tab.page
    page.goto(live.page_url(live.allowed, audio=url))
    page.wait_for_function("document.getElementById('player').readyState >= 2")
    duration = page.evaluate("document.getElementById('player').duration")
    assert abs(duration - seconds) <= 0.5
    media = [r for r in tab.responses if r.url == url]
    assert [r.status for r in media] == [206]  # the player asks for "bytes=0-"
    assert media[0].request.headers.get("range") == "bytes=0-"
    size = int(media[0].headers["content-range"].rpartition("/")[2])

    page.evaluate(f"document.getElementById('player').currentTime = {seconds // 2}")
    page.wait_for_function(
        "(() => { const p = document.getElementById('player');"
        f" return !p.seeking && p.readyState >= 2 && p.currentTime >= {seconds // 2}; }})()"
    )
    [seek] = [r for r in tab.responses if r.url == url][1:]
    asked = seek.request.headers.get("range", "")
    assert asked.startswith("bytes=") and asked.endswith("-")
    start = int(asked.removeprefix("bytes=").removesuffix("-"))
    assert size * 0.4 < start < size * 0.6, (start, size)
    assert seek.status == 206
    assert seek.headers["content-range"] == f"bytes {start}-{size - 1}/{size}"
    assert seek.headers["access-control-allow-origin"] == live.allowed
    assert page.evaluate("document.getElementById('player').error") is None
    gateway_side = [(s.method, s.range, s.status) for s in live.seen if s.path in url]
    assert gateway_side[:2] == [("GET", "bytes=0-", 206), ("GET", asked, 206)]


def test_audio_with_crossorigin_from_another_origin_is_refused(live: Live, tab: Tab) -> None:
    url, _ = live.recording(Provider.TWILIO, live.ready_ids(Provider.TWILIO)[0], "MP3")
    tab.page.goto(live.page_url(live.other, audio=url))
    # MEDIA_ERR_SRC_NOT_SUPPORTED: the answer has no Access-Control-Allow-Origin for it.
    tab.page.wait_for_function("document.getElementById('player').error !== null")
    assert tab.page.evaluate("document.getElementById('player').error.code") == 4
    assert tab.page.evaluate("url => failure(fetch(url))", url) == "TypeError"


# --- Web Audio: reading the bytes -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["MP3", "WAV"])
def test_a_page_of_an_allowed_origin_reads_media_bytes_and_headers(
    live: Live, tab: Tab, fmt: str
) -> None:
    url, seconds = live.recording(Provider.TWILIO, live.ready_ids(Provider.TWILIO)[0], fmt)
    tab.page.goto(live.page_url(live.allowed))
    read = tab.page.evaluate("url => readRange(url, 'bytes=0-99')", url)
    assert read["status"] == 206 and read["length"] == 100
    # Readable only because the gateway exposes them (Access-Control-Expose-Headers).
    assert read["contentRange"].startswith("bytes 0-99/")
    assert read["acceptRanges"] == "bytes"
    assert read["contentLength"] == "100"
    decoded = tab.page.evaluate("url => decodedSeconds(url)", url)
    assert abs(decoded - seconds) <= 0.5
