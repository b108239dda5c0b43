"""Real audio as long as each recording: WAV produced range by range, MP3 encoded once and cached.

A WAV body is a 44-byte header followed by one deterministic second of tone repeated
`duration` times, so any byte range of a file of hours is computed without building the file.
"""

from __future__ import annotations

import array
import math
import struct
import sys
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import anyio
import anyio.to_thread
import lameenc

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
HEADER_SIZE = 44
CHUNK_SIZE = 64 * 1024
MP3_BITRATE_KBPS = 32
AMPLITUDE = 6000


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """What the media of one recording sounds like: its length, channels and tone."""

    duration: int
    channels: int
    tone_hz: int

    @classmethod
    def of(cls, recording_id: str, duration: int, channels: int) -> AudioSpec:
        """The spec of a recording; the tone is derived from its id."""
        return cls(max(duration, 0), channels, 300 + zlib.crc32(recording_id.encode()) % 500)

    @property
    def block(self) -> bytes:
        """One second of interleaved 16-bit little-endian PCM."""
        return tone_block(self.tone_hz, self.channels)


@lru_cache(maxsize=64)
def tone_block(tone_hz: int, channels: int) -> bytes:
    """One second of a sine tone per channel (the second channel a fifth higher)."""
    samples = array.array("h")
    steps = [2 * math.pi * tone_hz * (1 + 0.5 * ch) / SAMPLE_RATE for ch in range(channels)]
    for n in range(SAMPLE_RATE):
        samples.extend(int(AMPLITUDE * math.sin(step * n)) for step in steps)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


class Wav:
    """The WAV file of an `AudioSpec`: its size and any byte range, chunk by chunk."""

    def __init__(self, spec: AudioSpec) -> None:
        self.spec = spec
        self.block = spec.block
        self.data_size = len(self.block) * spec.duration
        self.size = HEADER_SIZE + self.data_size

    def header(self) -> bytes:
        """The canonical 44-byte PCM header."""
        channels = self.spec.channels
        return struct.pack(
            "<4sI4s4sIHHIIHH4sI",
            b"RIFF",
            36 + self.data_size,
            b"WAVE",
            b"fmt ",
            16,
            1,
            channels,
            SAMPLE_RATE,
            SAMPLE_RATE * channels * SAMPLE_WIDTH,
            channels * SAMPLE_WIDTH,
            SAMPLE_WIDTH * 8,
            b"data",
            self.data_size,
        )

    def read(self, start: int, stop: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Bytes `start` (inclusive) to `stop` (exclusive), in chunks of at most `chunk_size`."""
        stop = min(stop, self.size)
        position = start
        while position < stop:
            end = min(stop, position + chunk_size)
            yield self._slice(position, end)
            position = end

    def _slice(self, start: int, stop: int) -> bytes:
        head = b""
        if start < HEADER_SIZE:
            head = self.header()[start : min(stop, HEADER_SIZE)]
            start = HEADER_SIZE
        if start >= stop:
            return head
        block, offset = self.block, (start - HEADER_SIZE) % len(self.block)
        wanted = stop - start
        repeats = (offset + wanted) // len(block) + 1
        return head + (block * repeats)[offset : offset + wanted]


def encode_mp3(spec: AudioSpec) -> bytes:
    """The whole MP3 (MPEG-2.5 layer III at 8 kHz), fed to LAME one second at a time."""
    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(spec.channels)
    encoder.set_bit_rate(MP3_BITRATE_KBPS)
    encoder.set_quality(7)
    out = bytearray()
    block = spec.block
    for _ in range(spec.duration):
        out += encoder.encode(block)
    out += encoder.flush()
    return bytes(out)


class Mp3Cache:
    """A small LRU of encoded MP3 bodies, keyed by the audio spec.

    `fetch` encodes off the event loop, once even when several requests want the same body.
    """

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._items: OrderedDict[AudioSpec, bytes] = OrderedDict()
        self._locks: dict[AudioSpec, anyio.Lock] = {}

    async def fetch(self, spec: AudioSpec) -> bytes:
        """The MP3 of `spec`, from the cache or freshly encoded in a worker thread."""
        lock = self._locks.setdefault(spec, anyio.Lock())
        try:
            async with lock:
                body = self.get(spec)
                if body is None:
                    body = await anyio.to_thread.run_sync(encode_mp3, spec)
                    self.put(spec, body)
                return body
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._locks.pop(spec, None)

    def get(self, spec: AudioSpec) -> bytes | None:
        """The cached body, marking it recently used; None when absent."""
        body = self._items.get(spec)
        if body is not None:
            self._items.move_to_end(spec)
        return body

    def put(self, spec: AudioSpec, body: bytes) -> None:
        """Store a body, evicting the least recently used beyond capacity."""
        self._items[spec] = body
        self._items.move_to_end(spec)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
