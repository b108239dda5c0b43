"""GraphiQL as a user meets it in Chromium: served by the gateway alone, it runs the demo
query, shows the docs, sends the ``Authorization`` header typed into its headers editor, and
runs a subscription over the gateway's WebSocket.

The gateway runs as ``serve --demo`` builds it (``app.cli``), under uvicorn on a loopback
socket, with the sandbox providers on another; the browser may reach nothing else (conftest).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, Response, expect

from app.demo import demo_query, demo_settings
from app.events import codec
from app.main import create_app
from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from tests.browser.conftest import Tab
from tests.events.support import active, recording_event, with_publisher
from tests.servers import serve

API_KEY = "browser-test-key-0123456789abcdef"
#: Where the README's screenshot goes when the environment names a file for it.
SCREENSHOT_ENV = "GATEWAY_DOCS_SCREENSHOT"


@dataclass(frozen=True)
class Demo:
    """A demo gateway's base URL and the sample ids its GraphiQL document asks for."""

    url: str
    sample_ids: dict[str, str]


@contextlib.contextmanager
def demo_gateway(api_key: str | None) -> Iterator[Demo]:
    sandbox = create_sandbox_app(DEMO)
    sample_ids: dict[str, str] = sandbox.state.sandbox.sample_ids()
    with serve(sandbox) as sandbox_url:
        settings = demo_settings(Settings(), sandbox_url, DEMO, api_key=api_key)
        app = create_app(settings, graphiql_default=demo_query(sample_ids))
        with serve(app) as url:
            yield Demo(url, sample_ids)


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    with demo_gateway(api_key=None) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def keyed_demo() -> Iterator[Demo]:
    with demo_gateway(api_key=API_KEY) as gateway:
        yield gateway


def open_graphiql(page: Page, url: str) -> None:
    page.goto(f"{url}/graphql")
    expect(page.locator(".graphiql-execute-button")).to_be_visible()


def run_query(page: Page) -> Response:
    """Click GraphiQL's run button; the answer to the query it POSTs."""
    with page.expect_response(
        lambda r: (
            r.url.endswith("/graphql")
            and r.request.method == "POST"
            and "IntrospectionQuery" not in (r.request.post_data or "")
        )
    ) as answer:
        page.locator(".graphiql-execute-button").click()
    return answer.value


def csp_violations(tab: Tab) -> list[str]:
    return [m for m in tab.console if "Content Security Policy" in m]


def test_graphiql_loads_from_the_gateway_alone_and_runs_the_demo_query(
    tab: Tab, demo: Demo, tmp_path: Path
) -> None:
    page = tab.page
    assets: list[str] = []
    page.on("requestfinished", lambda request: assets.append(request.url))
    open_graphiql(page, demo.url)

    answer = run_query(page)

    assert answer.status == 200
    data = answer.json()["data"]
    assert {name: data[name]["id"] for name in demo.sample_ids} == demo.sample_ids
    # The result pane (CodeMirror) draws the lines in view: the first recording's.
    first = next(iter(demo.sample_ids.values()))
    expect(page.locator(".result-window")).to_contain_text(f'"id": "{first}"')
    assert {a.removeprefix(demo.url).split("/")[1] for a in assets} == {"graphql", "graphiql"}
    assert csp_violations(tab) == []
    shot = tmp_path / "graphiql.png"
    page.screenshot(path=shot)
    assert shot.stat().st_size > 0
    if target := os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, target)


def test_the_docs_explorer_shows_the_query_type(tab: Tab, demo: Demo) -> None:
    page = tab.page
    open_graphiql(page, demo.url)

    page.get_by_label("Show Documentation Explorer").click()

    docs = page.locator(".graphiql-doc-explorer")
    expect(docs).to_contain_text("query:")
    docs.get_by_text("Query", exact=True).click()
    expect(docs).to_contain_text("recording")
    assert csp_violations(tab) == []


def test_graphiql_sends_the_authorization_header_from_its_headers_editor(
    tab: Tab, keyed_demo: Demo
) -> None:
    page = tab.page
    open_graphiql(page, keyed_demo.url)
    headers = page.locator(".graphiql-editor-tool .graphiql-editor").last

    set_editor(page, headers, "{}")
    refused = run_query(page)
    set_editor(page, headers, f'{{"Authorization": "Bearer {API_KEY}"}}')
    answered = run_query(page)

    assert refused.status == 401
    assert "authorization" not in refused.request.headers
    assert answered.request.headers["authorization"] == f"Bearer {API_KEY}"
    assert answered.status == 200
    data = answered.json()["data"]
    assert {name: data[name]["id"] for name in keyed_demo.sample_ids} == keyed_demo.sample_ids


def set_editor(page: Page, editor: Locator, text: str) -> None:
    """Replace what a GraphiQL editor (CodeMirror) holds by ``text``, as a paste would."""
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    expect(editor).to_contain_text(text)


def test_graphiql_runs_a_subscription_over_the_websocket(tab: Tab) -> None:
    """The headers editor's Authorization goes in ``connection_init``; a published event
    shows in the result pane (the tests' publishing hook stands in for a webhook).

    The page opens with the subscription as its document (the gateway's GraphiQL default)
    rather than typed in: GraphiQL finds out that a document is a subscription (and so goes
    over the WebSocket) 100 ms after the editor last changed, and a click sooner than that
    on a loaded machine sent it over HTTP instead."""
    sandbox = create_sandbox_app(DEMO)
    subscription = "subscription { recordingEvents { type recording { id } } }"
    with serve(sandbox) as sandbox_url:
        settings = demo_settings(Settings(), sandbox_url, DEMO, api_key=API_KEY)
        app = with_publisher(create_app(settings, graphiql_default=subscription))
        with serve(app) as url, httpx.Client(base_url=url) as http:
            page = tab.page
            open_graphiql(page, url)
            query = page.locator(".graphiql-query-editor .graphiql-editor").first
            expect(query).to_contain_text(subscription)
            headers = page.locator(".graphiql-editor-tool .graphiql-editor").last
            set_editor(page, headers, f'{{"Authorization": "Bearer {API_KEY}"}}')
            with page.expect_websocket(lambda ws: ws.url.endswith("/graphql")):
                page.locator(".graphiql-execute-button").click()
            deadline = time.monotonic() + 30
            while active(http.get("/metrics").text, "default") < 1:  # each scrape the wait
                assert time.monotonic() < deadline, "GraphiQL never subscribed"
            event = recording_event("default", "RE" + "7" * 32)
            published = http.post("/test/publish", content=codec.encode("test", event))
            assert published.status_code == 204
            expect(page.locator(".result-window")).to_contain_text("RE" + "7" * 32)
            expect(page.locator(".result-window")).to_contain_text('"type": "COMPLETED"')
    assert csp_violations(tab) == []
