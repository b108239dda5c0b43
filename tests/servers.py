"""Run ASGI apps under uvicorn on real loopback sockets, for end-to-end tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import trustme
import uvicorn
from starlette.types import ASGIApp


@contextlib.contextmanager
def serve(app: ASGIApp, *, tls: trustme.LeafCert | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and yield its base URL (``https`` with a ``tls`` cert).

    The socket is bound and listening before the server thread starts, so clients
    may connect at once: the kernel queues them until uvicorn accepts (no waiting).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    with contextlib.ExitStack() as files:
        certfile = keyfile = None
        if tls is not None:
            certfile = files.enter_context(tls.cert_chain_pems[0].tempfile())
            keyfile = files.enter_context(tls.private_key_pem.tempfile())
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", ssl_certfile=certfile, ssl_keyfile=keyfile
        )
        config.load()  # reads the certificate files while they exist
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@dataclass
class RawServer:
    """A hand-driven HTTP server: its URL, and how many connections it has accepted."""

    url: str
    connections: int = 0


@contextlib.contextmanager
def raw_server(handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[RawServer]:
    """A server that reads each request's head, then lets ``handle`` write what it likes.

    ``handle`` runs in the server's thread, one connection at a time; the event it gets
    is set when the test is over (a handler that waits should wait on it, to end then).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    server = RawServer(f"http://127.0.0.1:{listener.getsockname()[1]}")
    over = threading.Event()

    def run() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # shut down: the test is over
                return
            server.connections += 1
            with connection:
                head = b""
                while b"\r\n\r\n" not in head and (data := connection.recv(65536)):
                    head += data
                with contextlib.suppress(OSError):  # the client may hang up first
                    handle(connection, over)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        over.set()
        listener.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=30)
        listener.close()
