"""The export's two formats: rows -> bytes, and how each ends when the export fails midway.

**CSV** (RFC 4180, UTF-8, through the ``csv`` module): a header row, ``\\r\\n`` after every
record, a field quoted when it holds a comma, a quote or a line break; None is an empty
field. A CSV has no place for an error, so a failed CSV export is *cut* (``app.export.route``):
the client sees a truncated transfer, never a short file that looks complete.

Spreadsheet formula injection: a cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or
carriage return) is run as a formula by Excel, LibreOffice and Google Sheets, and the providers'
values are not ours (a caller id, a status or an error text a third party can influence). Such
a value gets a leading ``'`` (OWASP's advice), which spreadsheets hide and treat as "text" -
except where it is a plain number: ``+14155550100`` (an E.164 phone number) and ``-0.25`` stay
exactly as they are, since a number cannot run anything and rewriting one would corrupt the
data for every other tool (pandas, a database import). NDJSON is for programs and is never
rewritten.

**NDJSON**: one JSON object per line (the columns as keys, in order), ``\\n`` after each. A
failed export ends with one more line, ``{"error": {"message", "code", "provider"}}``: the
client reads it, and a consumer that expects only rows fails on it rather than go on short.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from typing import Protocol

from app.errors import GatewayError
from app.export.rows import COLUMNS, Row, Value

#: What starts a formula in a spreadsheet cell.
_FORMULA_START = frozenset("=+-@\t\r")
#: A plain signed number (a phone number in E.164 included): safe as it is.
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


class Writer(Protocol):
    """One export format: its media type and file extension, and its bytes."""

    media_type: str
    extension: str

    def header(self) -> bytes: ...

    def rows(self, rows: Iterable[Row]) -> bytes: ...

    def failure(self, error: GatewayError) -> bytes | None:
        """The bytes that end a failed export, or None: the transfer must be cut instead."""


def defuse(value: Value) -> Value:
    """``value`` made safe to open in a spreadsheet (see the module docstring)."""
    if type(value) is str and value[:1] in _FORMULA_START and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class CsvWriter:
    media_type = "text/csv; charset=utf-8; header=present"
    extension = "csv"

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self) -> bytes:
        self._csv.writerow(COLUMNS)
        return self._drain()

    def rows(self, rows: Iterable[Row]) -> bytes:
        self._csv.writerows(tuple(defuse(value) for value in row) for row in rows)
        return self._drain()

    def failure(self, error: GatewayError) -> bytes | None:
        return None

    def _drain(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()


class NdjsonWriter:
    media_type = "application/x-ndjson"
    extension = "ndjson"

    def header(self) -> bytes:
        return b""

    def rows(self, rows: Iterable[Row]) -> bytes:
        lines = (_line(dict(zip(COLUMNS, row, strict=True))) for row in rows)
        return "".join(lines).encode()

    def failure(self, error: GatewayError) -> bytes | None:
        return _line({"error": error_object(error)}).encode()


def error_object(error: GatewayError) -> dict[str, str | None]:
    """What the NDJSON trailer says about a failure."""
    provider = error.provider.name if error.provider is not None else None
    return {"message": error.message, "code": error.code, "provider": provider}


def _line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


WRITERS: dict[str, type[CsvWriter] | type[NdjsonWriter]] = {
    "csv": CsvWriter,
    "ndjson": NdjsonWriter,
}
