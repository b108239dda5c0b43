"""Graceful shutdown, on a real ``recording-gateway serve`` process and real sockets.

On SIGTERM the gateway stops accepting (a new connection is refused), lets what is in flight
finish (a media stream, a GraphQL request waiting on its provider), runs its lifespan's
shutdown only then (it closes the upstream transport the streams read from), and exits 0.
What is still running after ``GATEWAY_SHUTDOWN_GRACE`` is cut, and the process ends soon
after.

These tests name the uvicorn behaviour ``app/cli.py`` relies on (``timeout_graceful_shutdown``,
closing the listeners first, waiting for connections before the lifespan's shutdown, its log
lines): a release that changes it fails them.

The provider is the sandbox, served from this process: a stream is held in flight by not
reading it (the gateway blocks on the full socket), a GraphQL request by a gate in front of the
sandbox that holds each request until the test opens it. Every wait is on an event: a line
the gateway prints, a byte received, the process's exit; never a sleep.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import anyio.to_thread
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from app.logs import SHUTDOWN_CUT
from app.models import Provider
from app.sandbox import DEMO, Sandbox, create_sandbox_app
from app.settings import Settings
from tests.media.support import mint_sync
from tests.servers import serve
from tests.support import sandbox_env
from tests.test_cli import ROOT, STARTUP_TIMEOUT, environment, free_port

#: uvicorn's lines: after "Shutting down" it closes its listeners and asks every connection to
#: close once its response is sent; it prints WAITING if one is still busy.
SHUTTING_DOWN = "Shutting down"
WAITING = "Waiting for connections to close"
CUT = "timeout graceful shutdown exceeded"
LIFESPAN_DONE = "Application shutdown complete"
#: Seconds the machine may need beyond what is measured (2 cores shared with other tests).
MARGIN = 5.0


class Gateway:
    """``python -m app serve`` in its own process: its URL, its output as it comes."""

    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", *args, "--port", str(port)],
            cwd=ROOT,
            env=environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:  # keeps reading, or the server would block on a full pipe
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = STARTUP_TIMEOUT) -> None:
        """Return once a line holding ``text`` was printed; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                assert not self._ended and left > 0, f"no {text!r} in:\n{''.join(self.lines)}"
                self._changed.wait(left)

    def terminate(self) -> float:
        """Send SIGTERM; return the monotonic time it was sent."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        return sent

    def exit_code(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def gateway(sandbox_url: str, **extra: str) -> Iterator[Gateway]:
    """A gateway process over the sandbox at ``sandbox_url``, yielded once it listens."""
    running = Gateway(sandbox_env(DEMO, sandbox_url) | extra)
    try:
        running.wait_for("Uvicorn running on")
        yield running
    finally:
        running.close()


class Gate:
    """In front of the sandbox: each HTTP request waits until ``opened`` is set;
    ``arrived`` is set as the first one comes in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.arrived = threading.Event()
        self.opened = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.arrived.set()
            await anyio.to_thread.run_sync(self.opened.wait)
        await self.app(scope, receive, send)


@dataclass
class Upstream:
    """The sandbox behind a gate (open unless a test closes it), served on a real socket."""

    sandbox: Sandbox
    gate: Gate
    url: str

    def long_wav(self, megabytes: int) -> str:
        """Make the SignalWire sample a mono WAV of about ``megabytes`` MB; return its id."""
        rid = self.sandbox.sample_ids()["signalwire"]
        record = self.sandbox.dataset.get("signalwire", rid)
        assert record is not None
        seconds = megabytes * 2**20 // 16000  # 16-bit mono at 8 kHz
        self.sandbox.dataset.put(replace(record, duration=seconds, channels=1))
        return rid


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    app = create_sandbox_app(DEMO)
    gate = Gate(app)
    gate.opened.set()
    with serve(gate) as url:
        try:
            yield Upstream(app.state.sandbox, gate, url)
        finally:
            gate.opened.set()  # lets a request still held end with the test


def test_a_media_stream_in_flight_completes_and_new_connections_are_refused(
    upstream: Upstream,
) -> None:
    # 48 MB: several times what the loopback socket buffers and aiohttp's read-ahead hold, so
    # the gateway is still sending when SIGTERM comes, as long as the client does not read.
    rid = upstream.long_wav(48)
    with gateway(upstream.url) as server, httpx.Client(base_url=server.url) as client:
        url = mint_sync(client, Provider.SIGNALWIRE, rid, fmt="WAV")
        with client.stream("GET", url) as response:
            size = int(response.headers["content-length"])
            chunks = response.iter_raw()
            received = len(next(chunks))  # the stream has begun
            sent = server.terminate()
            server.wait_for(WAITING)  # listeners closed, and uvicorn waits on the stream
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{server.url}/livez")
            assert server.process.poll() is None
            received += sum(len(chunk) for chunk in chunks)
            streamed = time.monotonic()
        code = server.exit_code(timeout=MARGIN)
        exited = time.monotonic()
    assert received == size > 48_000_000
    assert code == 0, server.output
    # The lifespan's shutdown (which closes the upstream transport) ran after the stream.
    assert LIFESPAN_DONE in server.output and CUT not in server.output
    print(
        f"\nstream done {streamed - sent:.2f} s after SIGTERM; exit {exited - streamed:.2f} s later"
    )


def test_a_graphql_request_in_flight_completes_and_idle_connections_are_closed(
    upstream: Upstream,
) -> None:
    rid = upstream.sandbox.sample_ids()["twilio"]
    query = {"query": f'{{ recording(provider: TWILIO, id: "{rid}") {{ id status }} }}'}
    with (
        gateway(upstream.url) as server,
        ThreadPoolExecutor(1) as pool,
        httpx.Client(base_url=server.url) as idle,
    ):
        assert idle.get("/livez").status_code == 200  # its connection stays open, kept alive
        upstream.gate.opened.clear()
        answer = pool.submit(httpx.post, f"{server.url}/graphql", json=query, timeout=30)
        assert upstream.gate.arrived.wait(timeout=30)  # the gateway is waiting on the provider
        sent = server.terminate()
        server.wait_for(WAITING)
        # The idle connection was closed, not waited on; a new one is refused.
        with pytest.raises(httpx.ConnectError):
            idle.get("/livez")
        upstream.gate.opened.set()
        response = answer.result(timeout=30)
        code = server.exit_code(timeout=MARGIN)
        exited = time.monotonic()
    assert response.status_code == 200
    assert response.json() == {"data": {"recording": {"id": rid, "status": "COMPLETED"}}}
    assert code == 0, server.output
    assert exited - sent < MARGIN < Settings().shutdown_grace  # not held by the idle one
    print(f"\ngraphql held by the gate: exit {exited - sent:.2f} s after SIGTERM")


def test_a_stream_longer_than_the_grace_is_cut_at_the_grace(upstream: Upstream) -> None:
    grace = 0.5  # a fraction: uvicorn types it int, and honours it as a float
    rid = upstream.long_wav(48)
    env = {"GATEWAY_SHUTDOWN_GRACE": str(grace)}
    with gateway(upstream.url, **env) as server, httpx.Client(base_url=server.url) as client:
        url = mint_sync(client, Provider.SIGNALWIRE, rid, fmt="WAV")
        with client.stream("GET", url) as response:
            size = int(response.headers["content-length"])
            chunks = response.iter_raw()
            received = len(next(chunks))
            sent = server.terminate()
            code = server.exit_code(timeout=grace + MARGIN)  # the client reads nothing meanwhile
            exited = time.monotonic()
            with pytest.raises(httpx.RemoteProtocolError):  # closed before the whole body
                received += sum(len(chunk) for chunk in chunks)
    assert received < size
    assert grace <= exited - sent < grace + MARGIN
    assert code == 0, server.output
    assert CUT in server.output and LIFESPAN_DONE in server.output
    # The cut request is one WARNING line, not uvicorn's CancelledError traceback.
    assert SHUTDOWN_CUT in server.output and "Traceback" not in server.output, server.output
    print(f"\ngrace {grace} s: exited {exited - sent:.2f} s after SIGTERM")


@pytest.mark.parametrize(
    ("value", "read"), [(None, 20.0), ("0", 0.0), ("2.5", 2.5), ("600", 600.0)]
)
def test_the_shutdown_grace_setting(value: str | None, read: float) -> None:
    env = {} if value is None else {"GATEWAY_SHUTDOWN_GRACE": value}
    assert Settings.from_env(env).shutdown_grace == read


@pytest.mark.parametrize("value", ["-1", "600.5", "inf", "nan", "soon"])
def test_a_shutdown_grace_out_of_range_is_a_config_error(value: str) -> None:
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="GATEWAY_SHUTDOWN_GRACE"):
        Settings.from_env({"GATEWAY_SHUTDOWN_GRACE": value})
