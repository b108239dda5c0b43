"""Injected failures, for the gateway's error tests.

Besides error statuses, a fault can be a provider's answer that is wrong in shape rather
than status: another recording's JSON (``answer_json``), a redirect to anywhere
(``redirect``: a private host, a loop, a 3xx with a JSON body), or an oversized body
(``oversized``: declared, or chunked without a Content-Length so only counting finds it),
or a body that is not the recording's (``truncated_json``, ``answer_json`` with a list).

Wire faults (``hang``, ``trickle``, ``reset``) happen below HTTP, on the socket: an ASGI app
sends its head as one message and cannot reset a connection, so they are queued here and
played by the sandbox's TCP front (``app.sandbox.wire.WireFront``), which sees each
request before the app does. Without a front they are never taken.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from app.sandbox.errors import fault_body

FAULT_PROVIDERS = ("twilio", "signalwire", "bird", "s3")
#: Bytes per ``http.response.body`` message of a fault's body.
CHUNK = 64 * 1024

#: What a wire fault does to the connection of a request (see ``WireFault``).
WireKind = Literal["hang", "trickle-head", "trickle-body", "reset-head", "reset-body"]
WIRE_KINDS: tuple[WireKind, ...] = (
    "hang",
    "trickle-head",
    "trickle-body",
    "reset-head",
    "reset-body",
)


@dataclass(slots=True)
class Fault:
    """The next `remaining` requests to `provider` answer `status` with `body`."""

    provider: str
    status: int
    remaining: int
    body: bytes
    content_type: str
    retry_after: int | None = None
    #: More response headers (e.g. ``location``).
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: False: no Content-Length, the body is sent in ``CHUNK``-sized messages (chunked).
    declare_length: bool = True
    #: True: the request reaches the provider first, which acts on it (a DELETE deletes), and
    #: its answer is replaced by the fault's: a proxy in front that gave up on the answer.
    reached: bool = False

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Raw ASGI headers of the faulty response."""
        headers = [(b"content-type", self.content_type.encode("latin-1"))]
        if self.declare_length:
            headers.append((b"content-length", str(len(self.body)).encode("latin-1")))
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode("latin-1")))
        for name, value in self.extra_headers:
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        return headers

    def chunks(self) -> Iterator[bytes]:
        """The body as ASGI body messages (one, or ``CHUNK``-sized when chunked)."""
        if self.declare_length:
            yield self.body
            return
        for start in range(0, len(self.body), CHUNK):
            yield self.body[start : start + CHUNK]


@dataclass(slots=True)
class WireFault:
    """The next `remaining` requests to `provider` meet `kind` on the socket.

    ``hang``: the request is read and never answered (until the client hangs up).
    ``trickle-head`` / ``trickle-body``: the real answer, its head (or its body) sent one
    byte every `interval` seconds. ``reset-head``: the connection is reset before any byte
    of the answer; ``reset-body``: after the head and half the body.
    """

    provider: str
    kind: WireKind
    remaining: int
    interval: float = 0.05


F = TypeVar("F", Fault, WireFault)


class Faults:
    """A queue of injected faults per provider ("twilio", "signalwire", "bird", or "s3").

    `s3` is the host serving Bird's presigned media links.
    """

    def __init__(self) -> None:
        self._queued: list[Fault] = []
        self._wire: list[WireFault] = []

    def inject(
        self,
        provider: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        declare_length: bool = True,
        reached: bool = False,
    ) -> Fault:
        """Make the next `times` requests to `provider` answer `status`.

        The body is the provider's own error body for that status unless `body` is given
        (its content type then defaults to application/json, as a provider would label it).
        `headers` are added to the answer; `declare_length=False` sends it chunked.
        `reached=True` lets the request reach the provider first (it acts on it; its own
        answer is dropped), as a 502/504 from a proxy whose origin did the work.
        """
        if provider not in FAULT_PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {FAULT_PROVIDERS}")
        if times < 1:
            raise ValueError("times must be >= 1")
        default_body, default_type = fault_body(provider, status)
        fault = Fault(
            provider=provider,
            status=status,
            remaining=times,
            body=default_body if body is None else body,
            content_type=content_type or default_type,
            retry_after=retry_after,
            extra_headers=tuple((headers or {}).items()),
            declare_length=declare_length,
            reached=reached,
        )
        self._queued.append(fault)
        return fault

    def answer_json(
        self, provider: str, payload: Mapping[str, Any], *, status: int = 200, times: int = 1
    ) -> Fault:
        """The next `times` requests to `provider` answer `payload` (e.g. another recording's
        own JSON, as the sandbox renders it) with `status`."""
        return self.inject(provider, status, times=times, body=json.dumps(payload).encode())

    def redirect(
        self,
        provider: str,
        location: str,
        *,
        status: int = 307,
        times: int = 1,
        payload: Mapping[str, Any] | None = None,
    ) -> Fault:
        """The next `times` requests to `provider` redirect to `location` (with `payload` as
        a JSON body, or an empty one as Bird's and S3's redirects have)."""
        body = b"" if payload is None else json.dumps(payload).encode()
        return self.inject(provider, status, times=times, body=body, headers={"location": location})

    def oversized(
        self, provider: str, size: int, *, declare_length: bool = True, times: int = 1
    ) -> Fault:
        """The next `times` requests to `provider` answer 200 with a JSON object of `size`
        bytes (its length declared, or sent chunked without one)."""
        head, tail = b'{"padding": "', b'"}'
        filler = b"x" * max(0, size - len(head) - len(tail))
        return self.inject(
            provider, 200, times=times, body=head + filler + tail, declare_length=declare_length
        )

    def truncated_json(self, provider: str, payload: Mapping[str, Any], *, times: int = 1) -> Fault:
        """The next `times` requests to `provider` answer 200 with the first half of
        `payload`'s JSON (its Content-Length that of the half: a body cut, not a connection)."""
        encoded = json.dumps(payload).encode()
        return self.inject(provider, 200, times=times, body=encoded[: len(encoded) // 2])

    def html(self, provider: str, status: int = 503, *, times: int = 1) -> Fault:
        """The next `times` requests to `provider` answer `status` with a load balancer's HTML
        page (no vendor error code in it)."""
        page = f"<html><body><h1>{status} Service Temporarily Unavailable</h1></body></html>"
        return self.inject(
            provider, status, times=times, body=page.encode(), content_type="text/html"
        )

    def wire(
        self, provider: str, kind: WireKind, *, times: int = 1, interval: float = 0.05
    ) -> WireFault:
        """The next `times` requests to `provider` meet `kind` on the socket (played by a
        ``WireFront``; `interval` is the trickle's pause between bytes)."""
        if provider not in FAULT_PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {FAULT_PROVIDERS}")
        if kind not in WIRE_KINDS:
            raise ValueError(f"unknown wire fault {kind!r}; expected one of {WIRE_KINDS}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if interval <= 0:
            raise ValueError("interval must be > 0")
        fault = WireFault(provider=provider, kind=kind, remaining=times, interval=interval)
        self._wire.append(fault)
        return fault

    def take(self, provider: str | None) -> Fault | None:
        """Consume one use of the oldest HTTP fault queued for `provider`."""
        return _take(self._queued, provider)

    def take_wire(self, provider: str | None) -> WireFault | None:
        """Consume one use of the oldest wire fault queued for `provider`."""
        return _take(self._wire, provider)

    def pending(self) -> list[Fault | WireFault]:
        """Faults not used up yet: the HTTP ones oldest first, then the wire ones."""
        return [*self._queued, *self._wire]

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queued.clear()
        self._wire.clear()


def _take(queue: list[F], provider: str | None) -> F | None:
    for fault in queue:
        if fault.provider == provider:
            fault.remaining -= 1
            if fault.remaining == 0:
                queue.remove(fault)
            return fault
    return None
