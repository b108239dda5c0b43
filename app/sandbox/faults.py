"""Injected failures, for the gateway's error tests."""

from __future__ import annotations

from dataclasses import dataclass

from app.sandbox.errors import fault_body

FAULT_PROVIDERS = ("twilio", "signalwire", "bird", "s3")


@dataclass(slots=True)
class Fault:
    """The next `remaining` requests to `provider` answer `status` with `body`."""

    provider: str
    status: int
    remaining: int
    body: bytes
    content_type: str
    retry_after: int | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Raw ASGI headers of the faulty response."""
        headers = [
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode("latin-1")),
        ]
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode("latin-1")))
        return headers


class Faults:
    """A queue of injected faults per provider ("twilio", "signalwire", "bird", or "s3").

    `s3` is the host serving Bird's presigned media links.
    """

    def __init__(self) -> None:
        self._queued: list[Fault] = []

    def inject(
        self,
        provider: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Fault:
        """Make the next `times` requests to `provider` answer `status`.

        The body is the provider's own error body for that status unless `body` is given
        (its content type then defaults to application/json, as a provider would label it).
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
        )
        self._queued.append(fault)
        return fault

    def take(self, provider: str | None) -> Fault | None:
        """Consume one use of the oldest fault queued for `provider`."""
        for fault in self._queued:
            if fault.provider == provider:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._queued.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults not used up yet, oldest first."""
        return list(self._queued)

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queued.clear()
