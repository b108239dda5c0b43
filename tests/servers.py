"""Run ASGI apps under uvicorn on real loopback sockets, for end-to-end tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

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
        tls_files: dict[str, str] = {}
        if tls is not None:
            tls_files["ssl_certfile"] = files.enter_context(tls.cert_chain_pems[0].tempfile())
            tls_files["ssl_keyfile"] = files.enter_context(tls.private_key_pem.tempfile())
        config = uvicorn.Config(app, log_level="warning", lifespan="on", **tls_files)
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
