"""The gateway and the sandbox on real sockets, queried over HTTP like a client would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from app.main import create_app
from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from tests.servers import serve
from tests.support import RECORDING_QUERY, sandbox_env


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, dict[str, str]]]:
    sandbox = create_sandbox_app(DEMO)
    with serve(sandbox) as sandbox_url:
        settings = Settings.from_env(sandbox_env(DEMO, sandbox_url))
        with serve(create_app(settings)) as gateway_url:
            yield gateway_url, sandbox.state.sandbox.sample_ids()


def test_three_providers_over_http(live: tuple[str, dict[str, str]]) -> None:
    gateway_url, ids = live
    query = """
      query All($tw: ID!, $sw: ID!, $bird: ID!) {
        tw: recording(provider: TWILIO, id: $tw) { provider id status durationSeconds }
        sw: recording(provider: SIGNALWIRE, id: $sw) { provider id status durationSeconds }
        bird: recording(provider: BIRD, id: $bird) { provider id status durationSeconds from }
      }
    """
    variables = {"tw": ids["twilio"], "sw": ids["signalwire"], "bird": ids["bird"]}
    with httpx.Client(base_url=gateway_url) as client:
        body = client.post("/graphql", json={"query": query, "variables": variables}).json()
    assert "errors" not in body, body
    for alias, name in (("tw", "TWILIO"), ("sw", "SIGNALWIRE"), ("bird", "BIRD")):
        assert body["data"][alias]["provider"] == name
        assert body["data"][alias]["status"] == "COMPLETED"
    assert body["data"]["bird"]["from"].startswith("+")


def test_not_found_over_http(live: tuple[str, dict[str, str]]) -> None:
    gateway_url, _ = live
    variables = {"provider": "TWILIO", "id": "RE" + "0" * 32}
    with httpx.Client(base_url=gateway_url) as client:
        response = client.post("/graphql", json={"query": RECORDING_QUERY, "variables": variables})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_demo_command_serves_its_printed_query() -> None:
    """`recording-gateway serve --demo` prints a query that works against itself."""
    with socket.socket() as probe:  # a port the OS hands out
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO", "SIGNAL", "BIRD"))}
    command = [sys.executable, "-m", "app", "serve", "--demo", "--port", str(port)]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:  # blocks until the server says it is up
                lines.append(line)
                if "Uvicorn running on" in line:
                    break
            printed = "".join(lines)
            assert f"http://127.0.0.1:{port}/graphql" in printed
            start = printed.index("query Demo")
            query = printed[start : printed.index("\n\n", start)]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                body = client.post("/graphql", json={"query": query}).json()
                media = [client.get(r["mediaUrl"]) for r in body["data"].values()]
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert "errors" not in body, body
    assert {r["provider"] for r in body["data"].values()} == {"TWILIO", "SIGNALWIRE", "BIRD"}
    for response in media:  # the printed links play, the gateway streaming from its own sandbox
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/mpeg"
        assert response.content[:1] == b"\xff"
