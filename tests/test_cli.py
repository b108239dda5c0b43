"""The ``recording-gateway`` command, run as an operator runs it: ``python -m app`` in its own
process, on real sockets.

- ``keys new`` prints a fresh key and the hash line that the config accepts.
- ``serve`` refuses to listen beyond loopback with no client auth, unless told
  ``--insecure-no-auth`` (then it warns at start; the repeat every minute is tested on
  ``create_app`` with a short interval, as no test waits a minute).
- ``serve --demo`` is open on loopback and says so; beyond loopback it prints a key and
  requires it.
- Log lines emitted while a request runs name its tenant.

A server process is ready when uvicorn says "Uvicorn running on" (after the app's start-up
ran): its output is read as it comes, with a deadline, never slept on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from app.access.keys import key_hash, new_key
from app.main import create_app
from app.sandbox import DEMO, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.servers import serve
from tests.support import sandbox_env

ROOT = Path(__file__).resolve().parents[1]
#: Seconds a server process may take to start (the machine may be busy with other tests).
STARTUP_TIMEOUT = 60.0
OPEN = "WITHOUT client auth"
TYPENAME = {"query": "{ __typename }"}


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any gateway or provider setting, running this
    checkout's code, plus ``extra``."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GATEWAY_", "TWILIO_", "SIGNALWIRE_", "BIRD_"))
    }
    return kept | {"PYTHONPATH": str(ROOT)} | dict(extra or {})


def cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server process: its URL on 127.0.0.1, and its output (stdout and stderr)
    so far; the whole of it once the process has ended."""

    url: str
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def server(*args: str, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """``python -m app ARGS --port N``, yielded once it listens; stopped after."""
    port = free_port()
    command = [sys.executable, "-m", "app", *args, "--port", str(port)]
    running = Server(f"http://127.0.0.1:{port}")
    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        output = process.stdout

        def pump() -> None:  # keeps reading, or the server would block on a full pipe
            for line in output:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                assert line is not None, f"{command} ended before listening:\n{running.output}"
                running.lines.append(line)
                if "Uvicorn running on" in line:
                    break
            yield running
        finally:
            process.terminate()
            process.wait(timeout=30)
            reader.join(timeout=30)
            while not lines.empty() and (line := lines.get_nowait()) is not None:
                running.lines.append(line)


def healthy(url: str) -> bool:
    status: str = httpx.get(f"{url}/healthz").json()["status"]
    return status == "ok"


# --- keys new -------------------------------------------------------------------------------


def printed_key(output: str) -> str:
    keys: list[str] = re.findall(r"\brgk_\S*", output)
    [key] = keys
    return key


def test_keys_new_prints_a_random_key_and_its_hash() -> None:
    done = cli("keys", "new")
    assert done.returncode == 0, done.stderr
    key = printed_key(done.stdout)
    assert re.fullmatch(r"rgk_[A-Za-z0-9_-]+", key)
    assert len(base64.urlsafe_b64decode(key.removeprefix("rgk_") + "==")) >= 32
    [digest] = re.findall(r"^\s*sha256:([0-9a-f]+)$", done.stdout, flags=re.MULTILINE)
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert "GATEWAY_API_KEYS" in done.stdout
    # Pasted as told, it protects the environment mode's tenant.
    env = sandbox_env(DEMO) | {"GATEWAY_API_KEYS": f"sha256:{digest}"}
    assert Settings.from_env(env).tenant_settings()["default"].api_keys == (digest,)


def test_keys_new_for_a_tenant_prints_its_config_line(tmp_path: Path) -> None:
    done = cli("keys", "new", "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    key = printed_key(done.stdout)
    assert "[tenants.acme]" in done.stdout
    [line] = [each.strip() for each in done.stdout.splitlines() if "api_keys" in each]
    assert line == f'api_keys = ["sha256:{hashlib.sha256(key.encode()).hexdigest()}"]'
    # The line, pasted into the tenant's table, is what the config file reads.
    path = tmp_path / "gateway.toml"
    env = write_config(path, DEMO, {"acme": TenantSpec(new_key())})
    config = [
        line if each.startswith("api_keys") else each for each in path.read_text().splitlines()
    ]
    path.write_text("\n".join(config))
    assert Settings.from_env(env).tenant_settings()["acme"].api_keys == (key_hash(key),)


def test_two_runs_make_two_keys() -> None:
    first, second = cli("keys", "new"), cli("keys", "new")
    assert printed_key(first.stdout) != printed_key(second.stdout)


def test_keys_new_refuses_a_name_no_config_could_hold() -> None:
    done = cli("keys", "new", "--tenant", 'x y"z')
    assert done.returncode == 2 and "cannot name a tenant" in done.stderr
    assert "rgk_" not in done.stdout


# --- serve: who may listen where ------------------------------------------------------------


PROVIDERS = sandbox_env(DEMO, "http://127.0.0.1:9")  # never called: no query reaches them


def test_serve_beyond_loopback_without_client_auth_is_refused() -> None:
    done = cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), env=PROVIDERS)
    assert done.returncode == 2
    message = done.stderr
    assert "refusing to serve on 0.0.0.0 without client auth" in message
    for remedy in ("GATEWAY_API_KEYS", "keys new", "127.0.0.1", "--insecure-no-auth"):
        assert remedy in message
    assert "Uvicorn running" not in done.stderr + done.stdout


def test_insecure_no_auth_serves_beyond_loopback_and_warns_at_start() -> None:
    with server("serve", "--host", "0.0.0.0", "--insecure-no-auth", env=PROVIDERS) as gateway:
        assert healthy(gateway.url)
        answered = httpx.post(f"{gateway.url}/graphql", json=TYPENAME)
        assert answered.json() == {"data": {"__typename": "Query"}}
    warnings = [n for n, line in enumerate(gateway.lines) if OPEN in line]
    running = next(n for n, line in enumerate(gateway.lines) if "Uvicorn running" in line)
    assert warnings and warnings[0] < running, gateway.output  # logged as it starts
    assert (
        "WARNING app.main [tenant=-] [request=-]: serving on 0.0.0.0 WITHOUT"
        in gateway.lines[warnings[0]]
    )


def test_loopback_without_client_auth_serves_without_a_warning() -> None:
    with server("serve", "--host", "127.0.0.1", env=PROVIDERS) as gateway:
        assert healthy(gateway.url)
        answered = httpx.post(f"{gateway.url}/graphql", json=TYPENAME)
        assert answered.json() == {"data": {"__typename": "Query"}}
    assert OPEN not in gateway.output
    assert "Application startup complete" in gateway.output  # the log was read


def test_api_keys_let_it_serve_beyond_loopback_and_are_required() -> None:
    key = new_key()
    env = PROVIDERS | {"GATEWAY_API_KEYS": f"sha256:{key_hash(key)}"}
    with server("serve", "--host", "0.0.0.0", env=env) as gateway:
        assert healthy(gateway.url)
        anonymous = httpx.post(f"{gateway.url}/graphql", json=TYPENAME)
        keyed = httpx.post(f"{gateway.url}/graphql", json=TYPENAME, headers=bearer(key))
        wrong = httpx.post(f"{gateway.url}/graphql", json=TYPENAME, headers=bearer(new_key()))
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert keyed.json() == {"data": {"__typename": "Query"}}
    assert OPEN not in gateway.output
    assert key not in gateway.output


# --- the open warning, every interval -------------------------------------------------------


class Counting(logging.Handler):
    """Counts the records of one message; ``reached`` is set at ``enough`` of them."""

    def __init__(self, message: str, enough: int) -> None:
        super().__init__(logging.WARNING)
        self.message = message
        self.enough = enough
        self.count = 0
        self.reached = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.message:
            self.count += 1
            if self.count >= self.enough:
                self.reached.set()


@contextlib.contextmanager
def counting(message: str, enough: int) -> Iterator[Counting]:
    handler = Counting(message, enough)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.mark.anyio
async def test_the_open_warning_is_logged_at_start(
    settings: Settings, sandbox_app: Starlette
) -> None:
    """With the real interval (a minute): one warning as the app starts, long before it."""
    app = create_app(
        settings, transport=httpx.ASGITransport(app=sandbox_app), open_warning="open to all"
    )
    with counting("open to all", enough=1) as warnings:
        async with LifespanManager(app):
            await asyncio.wait_for(warnings.reached.wait(), timeout=10)
        assert warnings.count == 1


@pytest.mark.anyio
async def test_the_open_warning_repeats_every_interval(
    settings: Settings, sandbox_app: Starlette
) -> None:
    app = create_app(
        settings,
        transport=httpx.ASGITransport(app=sandbox_app),
        open_warning="open to all",
        open_warning_interval=0.01,
    )
    with counting("open to all", enough=3) as warnings:
        async with LifespanManager(app):
            await asyncio.wait_for(warnings.reached.wait(), timeout=10)


# --- serve --demo ---------------------------------------------------------------------------


def demo_query(banner: str) -> str:
    start = banner.index("query Demo")
    return banner[start : banner.index("\n\n", start)]


def test_demo_on_loopback_is_open_and_says_so() -> None:
    with server("serve", "--demo") as demo:
        body = httpx.post(f"{demo.url}/graphql", json={"query": demo_query(demo.output)}).json()
    assert "listens on loopback only, with no API key" in demo.output
    assert "rgk_" not in demo.output
    assert "errors" not in body, body
    assert {r["provider"] for r in body["data"].values()} == {"TWILIO", "SIGNALWIRE", "BIRD"}


def test_demo_beyond_loopback_prints_a_key_and_requires_it() -> None:
    with server("serve", "--demo", "--host", "0.0.0.0") as demo:
        [key] = re.findall(r"Authorization: Bearer (rgk_\S+)", demo.output)
        query = {"query": demo_query(demo.output)}
        anonymous = httpx.post(f"{demo.url}/graphql", json=query)
        answered = httpx.post(f"{demo.url}/graphql", json=query, headers=bearer(key))
        body = answered.json()
        # A media link takes no header: it goes into <audio src>.
        media = httpx.get(body["data"]["twilio"]["mediaUrl"])
    assert "beyond loopback" in demo.output and "loopback only" not in demo.output
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "errors" not in body, body
    assert {r["provider"] for r in body["data"].values()} == {"TWILIO", "SIGNALWIRE", "BIRD"}
    assert media.status_code == 200 and media.headers["content-type"] == "audio/mpeg"


# --- log lines name the tenant --------------------------------------------------------------


def test_log_lines_emitted_during_a_request_name_its_tenant(tmp_path: Path) -> None:
    """Two tenants, a Redis that is not there (a closed port): the cache's "unavailable"
    line comes from the first request that reaches the cache, globex's; the rate limiter's
    from the first request that spends a budget, acme's (only acme has a rate limit). Lines
    logged outside any request name none."""
    config = SandboxConfig()
    sandbox = create_sandbox_app(config)
    acme_key, globex_key = new_key(), new_key()
    with serve(sandbox) as sandbox_url:
        tenants = {
            "acme": TenantSpec(acme_key, rate_limit="100/minute"),
            "globex": TenantSpec(globex_key, accounts={"twilio": 1, "signalwire": 1, "bird": 1}),
        }
        env = write_config(tmp_path / "gateway.toml", config, tenants, base_url=sandbox_url)
        env["GATEWAY_CACHE_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        with server("serve", env=env) as gateway:
            for key, account in ((globex_key, 1), (acme_key, 0)):
                rid = sandbox.state.sandbox.sample_ids(account)["bird"]
                query = f'{{ recording(provider: BIRD, id: "{rid}") {{ id }} }}'
                response = httpx.post(
                    f"{gateway.url}/graphql", json={"query": query}, headers=bearer(key)
                )
                assert response.json() == {"data": {"recording": {"id": rid}}}
    [cache] = [line for line in gateway.lines if "cache unavailable" in line]
    [limits] = [line for line in gateway.lines if "rate-limit storage unavailable" in line]
    assert "[tenant=globex]" in cache
    assert "[tenant=acme]" in limits
    served = [line for line in gateway.lines if '"POST /graphql HTTP/1.1" 200' in line]
    assert len(served) == 2 and "[tenant=globex]" in served[0] and "[tenant=acme]" in served[1]
