"""``WireFront``: a TCP front of the sandbox that plays the wire faults an ASGI app cannot.

A provider misbehaves below HTTP too: it accepts a request and never answers, sends its
head or its body a byte at a time, or resets the connection before or in the middle of an
answer. An ASGI app can do none of these (its head is one message, it has no socket, and
uvicorn answers 500 for an app that fails before starting a response), so the front sits
before the sandbox served on a real socket (uvicorn, at ``backend``): it reads each request's
head, asks ``Faults.take_wire`` for the request's provider, and either plays the fault or
relays the request to the backend and the answer back.

It is hand-written on asyncio streams because what it must do is exactly what proxies and
servers are built never to do (hang, trickle, reset), and it is small: one request per
connection (the relayed request says ``Connection: close``, so the backend's answer tells
the client not to reuse the connection and every request meets the front afresh), only
``Content-Length`` request bodies (the gateway sends GETs), no TLS. A test stand-in, not a
proxy for anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from app.sandbox.faults import Faults, WireFault
from app.sandbox.web import provider_of

#: The most a request head may take (the gateway's are well under 2 KiB).
MAX_HEAD = 64 * 1024
#: Bytes per read when relaying an answer.
PIECE = 64 * 1024


class WireFront:
    """Listens on ``host:port`` (0: any free port) and fronts the sandbox at ``backend``.

    ``async with WireFront(sandbox.faults, ("127.0.0.1", 8001)) as front: front.url``.
    """

    def __init__(
        self, faults: Faults, backend: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.faults = faults
        self.backend = backend
        self.host = host
        self.port = port
        #: Each wire fault played, in order: (provider, kind).
        self.played: list[tuple[str, str]] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The front's base URL (what the gateway's providers point at)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        """Stop listening and end every connection still open (a hang's included)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def __aenter__(self) -> WireFront:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client hung up, or sent no HTTP: nothing to answer
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            return
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
        headers = [line.split(":", 1) for line in header_lines if ":" in line]
        length = next((v.strip() for k, v in headers if k.strip().lower() == "content-length"), "")
        body = await reader.readexactly(int(length)) if length.isdigit() else b""
        fault = self.faults.take_wire(provider_of(urlsplit(target).path))
        if fault is None:
            await self._relay(request_line, headers, body, writer)
            return
        self.played.append((fault.provider, fault.kind))
        await self._play(fault, request_line, headers, body, reader, writer)

    async def _play(
        self,
        fault: WireFault,
        request_line: str,
        headers: list[list[str]],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if fault.kind == "hang":
            while await reader.read(PIECE):  # until the client gives up
                pass
            return
        if fault.kind == "reset-head":
            reset(writer)
            return
        answer = await self._answer(request_line, headers, body)
        answer_head, separator, answer_body = answer.partition(b"\r\n\r\n")
        answer_head += separator
        if fault.kind == "reset-body":
            writer.write(answer_head + answer_body[: len(answer_body) // 2])
            await writer.drain()
            reset(writer)
        elif fault.kind == "trickle-head":
            await trickle(writer, answer_head, fault.interval)
            writer.write(answer_body)
            await writer.drain()
        else:  # trickle-body
            writer.write(answer_head)
            await trickle(writer, answer_body, fault.interval)

    async def _relay(
        self,
        request_line: str,
        headers: list[list[str]],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        """The request to the backend, its answer streamed back as it comes."""
        upstream_reader, upstream_writer = await self._send_backend(request_line, headers, body)
        try:
            while piece := await upstream_reader.read(PIECE):
                writer.write(piece)
                await writer.drain()
        finally:
            upstream_writer.close()

    async def _answer(self, request_line: str, headers: list[list[str]], body: bytes) -> bytes:
        """The backend's whole answer to the request (head and body, as bytes)."""
        upstream_reader, upstream_writer = await self._send_backend(request_line, headers, body)
        try:
            return await upstream_reader.read()
        finally:
            upstream_writer.close()

    async def _send_backend(
        self, request_line: str, headers: list[list[str]], body: bytes
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.backend)
        kept = [f"{k}:{v}" for k, v in headers if k.strip().lower() != "connection"]
        lines = [request_line, *kept, "Connection: close", "", ""]
        upstream_writer.write("\r\n".join(lines).encode("latin-1") + body)
        await upstream_writer.drain()
        return upstream_reader, upstream_writer


@contextlib.contextmanager
def front_in_thread(
    faults: Faults, backend: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[WireFront]:
    """A ``WireFront`` on its own event loop in a daemon thread, listening when yielded:
    for callers without a loop of their own, or whose loops come and go (a test module's
    cases). Faults are then queued from another thread than the one taking them, as with
    the sandbox under uvicorn: each is queued before the request it is meant for."""
    loop = asyncio.new_event_loop()
    front = WireFront(faults, backend, host=host, port=port)
    thread = threading.Thread(target=loop.run_forever, name="sandbox-wire-front", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(front.start(), loop).result()
        yield front
    finally:
        asyncio.run_coroutine_threadsafe(front.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def trickle(writer: asyncio.StreamWriter, data: bytes, interval: float) -> None:
    """``data`` one byte every ``interval`` seconds (until the client hangs up)."""
    for index in range(len(data)):
        writer.write(data[index : index + 1])
        await writer.drain()
        await asyncio.sleep(interval)


def reset(writer: asyncio.StreamWriter) -> None:
    """End the connection with a TCP reset (RST), not a close (FIN): ``SO_LINGER`` 0."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
