"""Recording events as JSON, for the Redis bus (``app.events.redis``); never pickle, so a
shared Redis cannot make a replica run code.

The same codec as the recording cache's (``app.cache``): msgspec reads the shape off the
dataclasses' own type hints, ``RecordingEvent`` and the ``models.Recording`` inside it, so a
field added to either travels with no change here (enums as their values, datetimes as RFC
3339, Decimal amounts as strings, ``raw`` as the JSON it came as). Each message also names the
bus that sent it (``origin``): a replica has already handed its own events to its subscribers
and skips them when Redis echoes them back.
"""

from __future__ import annotations

import msgspec

from app.events.model import RecordingEvent


class Message(msgspec.Struct, forbid_unknown_fields=True):
    """What one pub/sub message holds: the event, and which bus published it."""

    origin: str
    event: RecordingEvent


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Message)


def encode(origin: str, event: RecordingEvent) -> bytes:
    return _ENCODER.encode(Message(origin, event))


def decode(data: bytes | str) -> Message:
    """The inverse of ``encode``; ``msgspec.DecodeError`` (a ValueError) for anything else."""
    return _DECODER.decode(data)
