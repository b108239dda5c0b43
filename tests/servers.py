"""Real servers on loopback sockets for end-to-end tests: ASGI apps under uvicorn, hand-driven
HTTP servers, and a forward proxy."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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
    over = threading.Event()
    server = RawServer("")

    def serve_one(connection: socket.socket) -> None:
        server.connections += 1
        with connection:
            head = b""
            while b"\r\n\r\n" not in head and (data := connection.recv(65536)):
                head += data
            with contextlib.suppress(OSError):  # the client may hang up first
                handle(connection, over)

    with _listening(serve_one, over) as url:
        server.url = url
        yield server


@contextlib.contextmanager
def _listening(accept: Callable[[socket.socket], None], over: threading.Event) -> Iterator[str]:
    """Listen on 127.0.0.1 and hand each connection to ``accept``, in one thread, until the
    test is over; yield the base URL. ``over`` is set first thing at the end."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # shut down: the test is over
                return
            accept(connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        over.set()
        listener.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=30)
        listener.close()


@dataclass
class ForwardProxy:
    """A forward proxy's URL, and the head of each request it relayed, in order."""

    url: str
    requests: list[ProxiedRequest] = field(default_factory=list)


@dataclass(frozen=True)
class ProxiedRequest:
    """A request line as the proxy got it (``CONNECT host:port`` or an absolute URL),
    and its ``Proxy-Authorization`` header."""

    method: str
    target: str
    authorization: str | None


@contextlib.contextmanager
def forward_proxy() -> Iterator[ForwardProxy]:
    """An HTTP forward proxy on 127.0.0.1, as an egress proxy works: ``CONNECT host:port``
    opens a tunnel (for https), an absolute-form request (``GET http://host/path``) is
    relayed to that host in origin form, one per connection (for http). Anything else is
    refused with 400, so that a client which does not speak to it as a proxy fails.
    """
    proxy = ForwardProxy("")
    over = threading.Event()

    def relay(client: socket.socket) -> None:
        with contextlib.ExitStack() as closing:
            closing.enter_context(client)
            head = b""
            while b"\r\n\r\n" not in head and (data := client.recv(65536)):
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers = [tuple(part.strip() for part in each.split(":", 1)) for each in lines]
            authorization = next(
                (v for k, v in headers if k.lower() == "proxy-authorization"), None
            )
            proxy.requests.append(ProxiedRequest(method, target, authorization))
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                address = (host, int(port))
            elif target.startswith("http://"):
                url = urlsplit(target)
                address = (url.hostname or "", url.port or 80)
            else:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                upstream = closing.enter_context(socket.create_connection(address))
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                kept = [f"{k}: {v}" for k, v in headers if not k.lower().startswith("proxy-")]
                kept = [each for each in kept if not each.lower().startswith("connection:")]
                path = url.path + (f"?{url.query}" if url.query else "") or "/"
                request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close"])
                upstream.sendall(request.encode("latin-1") + b"\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            _pipe(client, upstream, over)

    def accept(connection: socket.socket) -> None:
        threading.Thread(target=relay, args=(connection,), daemon=True).start()

    with _listening(accept, over) as url:
        proxy.url = url
        yield proxy


def _pipe(one: socket.socket, other: socket.socket, over: threading.Event) -> None:
    """Copy bytes both ways until either side closes (or the test is over)."""
    peers = {one: other, other: one}
    with selectors.DefaultSelector() as selector:
        for each in peers:
            selector.register(each, selectors.EVENT_READ)
        while not over.is_set():
            for key, _ in selector.select(timeout=0.1):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
                except OSError:
                    return
