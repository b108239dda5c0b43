"""Start the real command-line programs for benchmarks: each in its own process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from app.sandbox import DEMO
from tests.support import sandbox_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    """A program started by ``started``: its base URL and process id (for its RSS, CPU)."""

    url: str
    pid: int


@contextlib.contextmanager
def started(
    args: list[str], env: Mapping[str, str] | None = None, *, module: str = "app"
) -> Iterator[Server]:
    """Run ``python -m MODULE ARGS --port N``; yield it once uvicorn says it is up."""
    port = free_port()
    command = [sys.executable, "-m", module, *args, "--port", str(port)]
    full_env = {**os.environ, **(env or {})}
    with subprocess.Popen(
        command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:  # blocks until the server reports it is listening
                if "Uvicorn running on" in line:
                    break
            else:
                raise RuntimeError(f"{command} exited before listening")
            # Keep reading, or the server blocks writing its access log into a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


@contextlib.contextmanager
def run(args: list[str], env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run ``python -m app ARGS --port N``; yield its base URL once uvicorn says it is up."""
    with started(args, env) as server:
        yield server.url


@contextlib.contextmanager
def sandbox_and_gateway(
    *, latency: float, recordings: int = 60, **gateway_env: str
) -> Iterator[str]:
    """The sandbox (with ``latency`` per answer) and a gateway pointed at it; yields the gateway."""
    sandbox_args = ["sandbox", "--latency", str(latency), "--recordings", str(recordings)]
    with run(sandbox_args) as sandbox_url:
        env = {**sandbox_env(DEMO, sandbox_url), **gateway_env}
        with run(["serve"], env) as gateway_url:
            yield gateway_url
