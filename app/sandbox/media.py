"""Serving media bodies: Content-Length, single byte ranges (206/416), HEAD, streaming."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.sandbox.audio import CHUNK_SIZE, AudioSpec, Mp3Cache, Wav

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")

#: Reads bytes [start, stop) of a body, in chunks.
Reader = Callable[[int, int], Iterator[bytes]]


class Unsatisfiable(Exception):
    """The Range header names no byte of the body."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range as (start, stop exclusive); None means "send it all".

    Malformed or multi-range headers are ignored, as RFC 9110 allows.
    """
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(size - suffix, 0), size
    start = int(first)
    stop = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, stop


def media_response(
    request: Request,
    *,
    size: int,
    reader: Reader,
    content_type: str,
    honor_range: bool,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """200 with the whole body, 206 with one range, or 416; bodies stream in chunks."""
    base = {"content-type": content_type, "accept-ranges": "bytes", **(headers or {})}
    try:
        wanted = parse_range(request.headers.get("range"), size) if honor_range else None
    except Unsatisfiable:
        return Response(b"", 416, headers={**base, "content-range": f"bytes */{size}"})
    status, (start, stop) = (200, (0, size)) if wanted is None else (206, wanted)
    base["content-length"] = str(stop - start)
    if status == 206:
        base["content-range"] = f"bytes {start}-{stop - 1}/{size}"
    if request.method == "HEAD":
        return Response(b"", status, headers=base)
    return StreamingResponse(_stream(reader, start, stop), status, headers=base)


async def _stream(reader: Reader, start: int, stop: int) -> AsyncIterator[bytes]:
    for chunk in reader(start, stop):
        yield chunk


def wav_response(request: Request, spec: AudioSpec, *, honor_range: bool) -> Response:
    """The WAV media of a recording, generated range by range."""
    wav = Wav(spec)
    return media_response(
        request, size=wav.size, reader=wav.read, content_type="audio/x-wav", honor_range=honor_range
    )


async def mp3_response(
    request: Request,
    spec: AudioSpec,
    cache: Mp3Cache,
    *,
    honor_range: bool,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The MP3 media of a recording, encoded (off the event loop) on first use."""
    body = await cache.fetch(spec)
    return media_response(
        request,
        size=len(body),
        reader=lambda start, stop: _chunks(body, start, stop),
        content_type="audio/mpeg",
        honor_range=honor_range,
        headers=headers,
    )


def _chunks(body: bytes, start: int, stop: int) -> Iterator[bytes]:
    view = memoryview(body)
    for position in range(start, stop, CHUNK_SIZE):
        yield bytes(view[position : min(stop, position + CHUNK_SIZE)])
