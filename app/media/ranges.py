"""Single byte ranges (RFC 9110 section 14): reading a client's ``Range`` and slicing a body.

The media proxy forwards a client's range upstream and, when an upstream ignores it
(answers 200 with the whole body), cuts the slice out of the stream itself.
Multi-range and malformed headers are ignored, as RFC 9110 allows: the client then
gets the whole body with 200.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.errors import RangeNotSatisfiableError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """``bytes=start-end`` (``end`` inclusive or None), or ``bytes=-end`` when ``start`` is None."""

    start: int | None
    end: int | None

    @classmethod
    def parse(cls, header: str | None) -> ByteRange | None:
        """The range a ``Range`` header asks for; None when absent, malformed or multi-range."""
        match = _RANGE.match((header or "").strip())
        if match is None or match.group(1) == match.group(2) == "":
            return None
        first, last = match.group(1), match.group(2)
        if first == "":
            return cls(None, int(last))
        start, end = int(first), (None if last == "" else int(last))
        if end is not None and end < start:
            return None
        return cls(start, end)

    @property
    def header(self) -> str:
        """The ``Range`` header value, as forwarded upstream."""
        if self.start is None:
            return f"bytes=-{self.end}"
        return f"bytes={self.start}-{'' if self.end is None else self.end}"

    def resolve(self, size: int) -> tuple[int, int]:
        """``(start, stop)`` with ``stop`` exclusive, within a body of ``size`` bytes."""
        if self.start is None:
            suffix = self.end or 0
            if suffix == 0 or size == 0:
                raise unsatisfiable(size)
            return max(size - suffix, 0), size
        if self.start >= size:
            raise unsatisfiable(size)
        stop = size if self.end is None else min(self.end + 1, size)
        return self.start, stop


def unsatisfiable(size: int | None) -> RangeNotSatisfiableError:
    return RangeNotSatisfiableError("the requested range is outside the media", size=size)


def content_range(start: int, stop: int, size: int) -> str:
    """The ``Content-Range`` of a 206 carrying bytes ``[start, stop)``."""
    return f"bytes {start}-{stop - 1}/{size}"


async def cut(chunks: AsyncIterator[bytes], start: int, stop: int) -> AsyncIterator[bytes]:
    """Bytes ``[start, stop)`` of a stream of chunks; stops reading once past ``stop``."""
    position = 0
    async for chunk in chunks:
        end = position + len(chunk)
        if end > start:
            piece = chunk[max(start - position, 0) : stop - position]
            if piece:
                yield piece
        position = end
        if position >= stop:
            return
