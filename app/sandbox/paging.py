"""Keyset paging over a listing sorted by `SandboxRecording.sort_key`.

A page token names the record just outside the page, so walking `next` links yields every
record once even while records are added or removed between requests.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from app.sandbox.data import SandboxRecording, SortKey


@dataclass(frozen=True, slots=True)
class Window:
    """One page of a listing and whether records exist on either side of it."""

    items: list[SandboxRecording]
    more_after: bool
    more_before: bool


def _key(record: SandboxRecording) -> SortKey:
    return record.sort_key


def at_offset(records: Sequence[SandboxRecording], start: int, size: int) -> Window:
    """Records `start` .. `start + size`."""
    items = list(records[start : start + size])
    return Window(items, start + size < len(records), start > 0 and bool(records))


def after(records: Sequence[SandboxRecording], key: SortKey, size: int) -> Window:
    """The `size` records that sort strictly after `key`."""
    start = bisect.bisect_right(records, key, key=_key)
    return at_offset(records, start, size)


def before(records: Sequence[SandboxRecording], key: SortKey, size: int) -> Window:
    """The `size` records that sort strictly before `key` (the page preceding it)."""
    stop = bisect.bisect_left(records, key, key=_key)
    start = max(stop - size, 0)
    items = list(records[start:stop])
    return Window(items, stop < len(records), start > 0)
