"""``recording-gateway export``: the export endpoint, from a terminal, to stdout or a file.

    recording-gateway export --since 30d --format csv > out.csv
    recording-gateway export --since 2026-11-01 --until 2026-12-01 --providers TWILIO,BIRD \\
        --format ndjson --output november.ndjson

It asks a running gateway (``--url``, default ``GATEWAY_URL`` or http://127.0.0.1:8000, with
``--api-key`` or ``GATEWAY_API_KEY``) for ``/export/recordings.<format>`` and writes the body
as it arrives, byte for byte, with a progress line on stderr (rows, pages, bytes, elapsed),
redrawn with ``\\r`` at most ten times a second.

A failed export is never taken for a complete one. The exit status is 0 only when the whole
body arrived and did not end with an error; otherwise 1, with one line on stderr saying why:

- the gateway refused (its status and JSON error: bad filter, credentials, a provider down
  before the first row);
- the transfer was cut (the CSV's way of failing midway: the body ends without its last
  chunk, which httpx reports as ``RemoteProtocolError``), or the connection broke;
- the NDJSON ended with its ``{"error": …}`` line (it is written through, too).

With ``--output`` the body goes to ``<output>.part`` first and is renamed only once complete,
so a failed export leaves no file that looks whole.

"Pages" are the gateway's pages (``X-Export-Page-Size`` rows each, the size it asks each
provider for): rows over that size, rounded up, as the client cannot see page boundaries.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
#: Seconds between two redraws of the progress line.
REDRAW = 0.1
#: The header in which the gateway says how many rows it asks each provider for per page.
PAGE_SIZE_HEADER = "x-export-page-size"
_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``export`` subcommand's options."""
    parser.add_argument(
        "--url",
        default=os.environ.get("GATEWAY_URL", DEFAULT_URL),
        help=f"the gateway (default GATEWAY_URL or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("GATEWAY_API_KEY"),
        help="the API key or JWT to send (default GATEWAY_API_KEY; none on an open gateway)",
    )
    parser.add_argument(
        "--since",
        type=instant,
        help="created at or after: an age (30d, 12h, 90m, 2w) or an ISO date or date-time",
    )
    parser.add_argument("--until", type=instant, help="created before (same forms as --since)")
    parser.add_argument("--providers", help="comma-separated, e.g. TWILIO,BIRD (default: all)")
    parser.add_argument("--statuses", help="comma-separated, e.g. COMPLETED,FAILED")
    parser.add_argument("--call-id", help="only this call's recordings")
    parser.add_argument("--conference-id", help="only this conference's recordings")
    parser.add_argument("--format", "-f", choices=("csv", "ndjson"), default="csv")
    parser.add_argument("--output", "-o", help="write here instead of stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line")


def instant(text: str, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> datetime:
    """``--since``/``--until``: ``30d`` (that long before now) or an ISO date or date-time."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = relative.groups()
        return now() - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"an age such as 30d, 12h, 90m or 2w, or an ISO date such as 2026-11-01; got {text!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parameters(args: argparse.Namespace) -> dict[str, str]:
    """The endpoint's query parameters for the command's options."""
    params: dict[str, str] = {}
    if args.providers:
        params["providers"] = args.providers
    if args.statuses:
        params["statuses"] = args.statuses
    if args.call_id:
        params["callId"] = args.call_id
    if args.conference_id:
        params["conferenceId"] = args.conference_id
    for name, moment in (("createdAfter", args.since), ("createdBefore", args.until)):
        if moment is not None:
            stamp = moment.astimezone(UTC).isoformat(timespec="milliseconds")
            params[name] = stamp.replace("+00:00", "Z")
    return params


class ExportFailed(Exception):
    """Why the export is not complete (the message is the line printed)."""


class Progress:
    """Rows, pages, bytes and elapsed time, on one stderr line redrawn in place."""

    def __init__(self, fmt: str, stream: IO[str] | None) -> None:
        self.fmt = fmt
        self.stream = stream
        self.rows = 0
        self.bytes = 0
        self.page_size = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._in_quotes = False  # CSV: inside a quoted field across chunks
        self._header = fmt == "csv"  # the CSV's header row is not a row
        self._tail = b""  # NDJSON: the last line's start, not yet ended
        self.error: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        if self.fmt == "csv":
            self._count_csv(chunk)
        else:
            self._count_ndjson(chunk)
        if time.monotonic() - self._drawn >= REDRAW:
            self.draw()

    def _count_csv(self, chunk: bytes) -> None:
        # A record ends at a line break outside quotes; "" inside quotes toggles twice.
        parts = chunk.split(b'"')
        for index, part in enumerate(parts):
            if index:
                self._in_quotes = not self._in_quotes
            if not self._in_quotes:
                ends = part.count(b"\n")
                if ends and self._header:
                    ends, self._header = ends - 1, False
                self.rows += ends

    def _count_ndjson(self, chunk: bytes) -> None:
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            if line.startswith(b'{"error"'):
                self.error = json.loads(line).get("error")
            elif line:
                self.rows += 1

    @property
    def pages(self) -> int:
        return math.ceil(self.rows / self.page_size) if self.page_size else 0

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        minutes, seconds = divmod(elapsed, 60)
        return (
            f"{self.rows:,} rows · {self.pages:,} pages · {self.bytes / 1e6:.1f} MB · "
            f"{int(minutes)}:{seconds:04.1f}"
        )

    def draw(self, *, final: bool = False) -> None:
        self._drawn = time.monotonic()
        if self.stream is not None:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    """Run the export the options describe; 0 when complete, 1 otherwise (see the module)."""
    progress = Progress(args.format, None if args.quiet else sys.stderr)
    target = Path(args.output) if args.output else None
    partial = target.with_name(target.name + ".part") if target is not None else None
    try:
        with _open(partial) as out:
            export(args, out, progress)
    except ExportFailed as exc:
        if progress.bytes and not args.quiet:
            progress.draw(final=True)
        if partial is not None:
            partial.unlink(missing_ok=True)
        print(f"recording-gateway export: {exc}", file=sys.stderr)
        return 1
    if partial is not None and target is not None:
        partial.replace(target)
    if not args.quiet:
        progress.draw(final=True)
    return 0


def export(args: argparse.Namespace, out: IO[bytes], progress: Progress) -> None:
    """Stream the export into ``out``; ExportFailed when it is not complete."""
    url = f"{args.url.rstrip('/')}/export/recordings.{args.format}"
    headers = {"authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    # No read timeout: pages may be sparse (a filter the providers cannot apply); the gateway
    # bounds each page itself.
    timeout = httpx.Timeout(30.0, read=None)
    try:
        with httpx.stream(
            "GET", url, params=parameters(args), headers=headers, timeout=timeout
        ) as r:
            if r.status_code != 200:
                r.read()
                raise ExportFailed(f"the gateway refused the export: {_refusal(r)}")
            size = r.headers.get(PAGE_SIZE_HEADER, "")
            progress.page_size = int(size) if size.isdigit() else 0
            for chunk in r.iter_bytes():
                out.write(chunk)
                progress.feed(chunk)
    except httpx.RemoteProtocolError:
        raise ExportFailed(
            f"the export was cut after {progress.rows:,} rows: the transfer ended before its "
            "end (a provider failed midway; the gateway's log says which)"
        ) from None
    except httpx.HTTPError as exc:
        raise ExportFailed(
            f"the export failed after {progress.rows:,} rows: {type(exc).__name__}: {exc}"
        ) from None
    if progress.error is not None:
        error = progress.error
        raise ExportFailed(
            f"the export failed after {progress.rows:,} rows: {error.get('provider') or '-'} "
            f"{error.get('code')}: {error.get('message')}"
        )


def _refusal(response: httpx.Response) -> str:
    try:
        error = response.json()["errors"][0]
        code = error.get("extensions", {}).get("code", "")
        return f"HTTP {response.status_code} {code}: {error['message']}"
    except (ValueError, LookupError, TypeError, AttributeError):
        return f"HTTP {response.status_code}"


class _open:
    """``path`` opened for writing bytes, or stdout's bytes when None (left open)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if self.path is None:
            return sys.stdout.buffer
        self.file = self.path.open("wb")
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
        else:
            sys.stdout.buffer.flush()
