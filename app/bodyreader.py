"""Large upstream bodies read straight into buffers the gateway hands on whole.

aiohttp delivers a body as bytes objects, copied three times in user space on the way:
uvloop copies each socket read into a bytes, the C parser copies the body out of that,
and ``StreamReader.readany`` joins what piled up: over a third of the gateway's CPU time
while it relays a media file. So, once aiohttp has parsed the head of a large body,
the transport lends the connection's transport to a ``BodyReader``: the kernel (or the
TLS layer) writes straight into a 512 KB ``bytearray``, whose filled part is handed on
as it is (a ``memoryview``). A buffer is read into again only once no chunk of it is
still held anywhere.

A chunk is a full buffer, or whatever arrived within ``LINGER`` seconds of the reader
starting to wait, whichever comes first: a fast upstream is relayed in few, large
writes, a slow one still at once. While it waits, the socket's ``SO_RCVLOWAT`` is the
bytes the buffer still lacks, so the kernel wakes the loop once per chunk rather than at
every segment the upstream sends (on loopback, 64 KB each): 4,000 to 5,000 wake-ups per
GB relayed went down to about 1,500, and the provider's side, which pays for waking a
reader on another CPU, spends less too.

Measured on the 2-core VM, the gateway alone on one CPU relaying a 1 GB WAV from the
sandbox to curl over loopback, 30 downloads each, interleaved, twice: 590-610 ms of
gateway CPU per GB through aiohttp's StreamReader (208 of them in user space), 400-410 ms
with this (90-96), and 410-420 ms for nginx's ``proxy_pass``. What is left is mostly the
kernel's: copying each byte in from one socket and out to the other.

The reader never reads past the body's ``Content-Length``. The connection is closed after
the body, not pooled: aiohttp's parser was left in the middle of it.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator

import httpx

#: The smallest Content-Length worth a connection of its own (it is not pooled again).
LARGE_BODY = 1 << 20
#: Each buffer's size: what a chunk waits for, LINGER seconds at most, before it goes
#: with what it has. 1 MB buffers (two 512 KB chunks each) cost 10% less CPU per GB but
#: held 4 MB per slowly reading client; 512 KB ones hold 2.5 MB, as aiohttp's path did.
CAPACITY = 1 << 19
LINGER = 0.002
#: Buffers kept per body for reuse: the one being read into, and chunks being written.
BUFFERS = 4


def _references(buffers: list[bytearray]) -> list[int]:
    """How many references each buffer has, counted the same way for every caller."""
    return [sys.getrefcount(buffer) for buffer in buffers]


#: The count of a buffer only its reader's list holds (measured, not assumed: how a
#: Python version counts borrowed references varies).
_UNVIEWED = _references([bytearray(1)])[0]


class BodyReader(asyncio.BufferedProtocol):
    """Reads the ``length`` bytes left of a body off a transport borrowed from ``owner``.

    ``owner``, the protocol the transport belonged to, still hears of the connection's
    loss, so that its pool lets go of the connection; ``closed`` is done then too (for a
    TLS connection, once the peer has answered our close_notify).
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        owner: asyncio.BaseProtocol,
        length: int,
        *,
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._owner = owner
        self._unread = length  # body bytes still in the socket
        self._read_timeout = read_timeout
        self._loop = asyncio.get_running_loop()
        self._buffers: list[bytearray] = []  # ours to read into again once unviewed
        self._view = memoryview(self._spare_buffer())
        self._start = 0  # where the next chunk starts: bytes before it are handed on
        self._filled = 0  # where the next read goes
        self._paused = False
        self._lingered = False
        self._linger: asyncio.TimerHandle | None = None
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._socket = transport.get_extra_info("socket")
        self._lowat = 1

    @classmethod
    def borrow(
        cls,
        transport: asyncio.Transport,
        owner: asyncio.BaseProtocol,
        length: int,
        *,
        read_timeout: float | None,
    ) -> BodyReader:
        """Take the transport over; the owner must have stopped reading already."""
        reader = cls(transport, owner, length, read_timeout=read_timeout)
        transport.set_protocol(reader)
        transport.resume_reading()
        return reader

    # --- the transport's side ---------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view[self._filled : self._filled + min(CAPACITY - self._filled, self._unread)]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        self._unread -= nbytes
        if self._filled == CAPACITY or not self._unread:
            self._paused = True
            self._transport.pause_reading()
        if self._ready():
            self._wake()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)
        self._owner.connection_lost(exc)

    # --- the reading side --------------------------------------------------------------------

    async def chunks(self) -> AsyncIterator[memoryview]:
        """The rest of the body: ``httpx.ReadError`` if the connection ends before it,
        ``httpx.ReadTimeout`` if no byte comes for the read timeout."""
        while self._unread or self._filled > self._start:
            await self._until_ready()
            chunk = self._view[self._start : self._filled]
            self._start = self._filled
            if self._filled == CAPACITY:  # the next reads go into another buffer
                self._view = memoryview(self._spare_buffer())
                self._start = self._filled = 0
            self._lingered = False
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            if self._paused and self._unread and not self._lost:
                self._paused = False
                self._transport.resume_reading()
            yield chunk

    def close(self) -> None:
        """Stop: the transport is closed (by its owner's pool) and no more is read."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _spare_buffer(self) -> bytearray:
        """A buffer no chunk handed on views any more, or a new one.

        A chunk's ``memoryview`` (and any view made from it, as a transport may make of
        a partly written chunk) holds a reference to its buffer until released: a buffer
        with no reference beyond ours may be written again. Reusing them spares a new
        ``bytearray`` per chunk: zeroing it, and the page faults when malloc had given
        its memory back to the system, cost more than the copies this module avoids.
        """
        for buffer, references in zip(self._buffers, _references(self._buffers), strict=True):
            if references <= _UNVIEWED:
                return buffer
        buffer = bytearray(CAPACITY)
        if len(self._buffers) < BUFFERS:
            self._buffers.append(buffer)
        return buffer

    def _ready(self) -> bool:
        pending = self._filled - self._start
        if not pending:
            return False
        full = self._filled == CAPACITY
        return full or not self._unread or self._lingered or self._lost

    async def _until_ready(self) -> None:
        while not self._ready():
            if self._lost:
                raise httpx.ReadError(
                    f"the upstream closed the connection {self._unread} bytes before "
                    "the end of the body"
                )
            if self._linger is None and not self._lingered:
                # Wake when what fills the buffer is in the socket, or LINGER from now.
                self._set_lowat(min(CAPACITY - self._filled, self._unread))
                self._linger = self._loop.call_later(LINGER, self._linger_over)
            waiter = self._waiter = self._loop.create_future()
            timer = None
            if self._read_timeout is not None:
                timer = self._loop.call_later(self._read_timeout, self._time_out, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()

    def _linger_over(self) -> None:
        self._linger = None
        self._lingered = True
        self._set_lowat(1)  # whatever the socket holds now wakes us
        self._wake()

    def _set_lowat(self, size: int) -> None:
        """How many bytes the socket holds before the kernel wakes the loop to read them."""
        if size == self._lowat or self._socket is None:
            return
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, size)
        except OSError:  # not a TCP socket, or a closed one: wake for every byte
            self._socket = None
        else:
            self._lowat = size

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _time_out(self, waiter: asyncio.Future[None]) -> None:
        if self._filled > self._start:  # bytes came, just not a whole chunk: hand them on
            self._linger_over()
        elif not waiter.done():
            waiter.set_exception(httpx.ReadTimeout("Timeout on reading data from socket"))
