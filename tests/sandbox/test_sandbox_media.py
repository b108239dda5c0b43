"""Media: real WAV/MP3 as long as the record says, Range requests, HEAD, long recordings."""

from __future__ import annotations

import io
import wave
from dataclasses import replace

import anyio
import httpx
import pytest

from app.sandbox import DEMO, Sandbox, SandboxConfig, SandboxRecording, audio, create_sandbox_app
from app.sandbox.audio import HEADER_SIZE, AudioSpec, Mp3Cache, Wav, encode_mp3
from app.sandbox.media import Unsatisfiable, parse_range

pytestmark = pytest.mark.anyio

SIGNALWIRE = f"/api/laml/2010-04-01/Accounts/{DEMO.signalwire_project_id}"
TWILIO = f"/2010-04-01/Accounts/{DEMO.twilio_account_sid}"
TWILIO_AUTH = (DEMO.twilio_account_sid, DEMO.twilio_auth_token)


def ready(sandbox: Sandbox, provider: str, channels: int) -> SandboxRecording:
    listing = sandbox.dataset.listing(provider)
    return next(r for r in listing if r.ready and r.channels == channels)


@pytest.mark.parametrize("channels", [1, 2])
async def test_wav_lasts_as_long_as_the_record(
    client: httpx.AsyncClient, sandbox: Sandbox, channels: int
) -> None:
    record = ready(sandbox, "signalwire", channels)
    response = await client.get(f"{SIGNALWIRE}/Recordings/{record.id}.wav")
    assert int(response.headers["content-length"]) == len(response.content)
    with wave.open(io.BytesIO(response.content)) as audio:
        assert audio.getnchannels() == channels
        assert audio.getframerate() == 8000 and audio.getsampwidth() == 2
        assert audio.getnframes() / audio.getframerate() == record.duration


async def test_twilio_extensionless_media_is_wav(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = ready(sandbox, "twilio", 2)
    response = await client.get(f"{TWILIO}/Recordings/{record.id}", auth=TWILIO_AUTH)
    assert response.headers["content-type"] == "audio/x-wav"
    with wave.open(io.BytesIO(response.content)) as audio:
        assert audio.getnframes() == record.duration * 8000


async def test_mp3_has_frame_sync_and_grows_with_duration(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = ready(sandbox, "signalwire", 1)
    sizes = []
    for seconds in (5, 50):
        sandbox.dataset.put(replace(record, duration=seconds))
        response = await client.get(f"{SIGNALWIRE}/Recordings/{record.id}.mp3")
        assert response.content[0] == 0xFF and response.content[1] & 0xE0 == 0xE0
        sizes.append(len(response.content))
    assert sizes[1] > 8 * sizes[0]
    assert 32_000 // 8 * 45 < sizes[1] < 32_000 // 8 * 55  # 32 kbps


def test_mp3_channels_follow_the_record() -> None:
    mono = encode_mp3(AudioSpec.of("a", 3, 1))
    stereo = encode_mp3(AudioSpec.of("a", 3, 2))
    # The channel mode is the top two bits of a frame header's fourth byte; 3 = single channel.
    assert mono[3] >> 6 == 3
    assert stereo[3] >> 6 != 3


@pytest.mark.parametrize("spec", ["bytes=0-99", "bytes=100-", "bytes=-500", "bytes=40-47"])
async def test_range_slices_equal_the_full_body(
    client: httpx.AsyncClient, sandbox: Sandbox, spec: str
) -> None:
    record = ready(sandbox, "signalwire", 2)
    for suffix in (".wav", ".mp3"):
        url = f"{SIGNALWIRE}/Recordings/{record.id}{suffix}"
        whole = (await client.get(url)).content
        part = await client.get(url, headers={"Range": spec})
        start, stop = parse_range(spec, len(whole)) or (0, len(whole))
        assert part.status_code == 206
        assert part.content == whole[start:stop]
        assert part.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(whole)}"
        assert part.headers["content-length"] == str(stop - start)
        assert part.headers["accept-ranges"] == "bytes"


async def test_unsatisfiable_range_is_416(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    record = ready(sandbox, "signalwire", 1)
    url = f"{SIGNALWIRE}/Recordings/{record.id}.wav"
    size = HEADER_SIZE + record.duration * 16000
    response = await client.get(url, headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


async def test_head_gives_headers_without_body(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    record = ready(sandbox, "signalwire", 1)
    response = await client.head(f"{SIGNALWIRE}/Recordings/{record.id}.wav")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(HEADER_SIZE + record.duration * 16000)
    ranged = await client.head(
        f"{SIGNALWIRE}/Recordings/{record.id}.mp3", headers={"Range": "bytes=0-9"}
    )
    assert (ranged.status_code, ranged.headers["content-length"]) == (206, "10")


async def test_range_can_be_ignored() -> None:
    app = create_sandbox_app(SandboxConfig(honor_range=False))
    record = ready(app.state.sandbox, "signalwire", 1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        url = f"{SIGNALWIRE}/Recordings/{record.id}.wav"
        response = await client.get(url, headers={"Range": "bytes=0-99"})
        assert response.status_code == 200
        assert len(response.content) == HEADER_SIZE + record.duration * 16000


async def test_three_hour_recording_is_served_in_ranges(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    record = replace(ready(sandbox, "signalwire", 2), duration=3 * 3600)
    sandbox.dataset.put(record)
    url = f"{SIGNALWIRE}/Recordings/{record.id}.wav"
    size = HEADER_SIZE + 3 * 3600 * 32000
    head = await client.head(url)
    assert head.headers["content-length"] == str(size)
    tail = await client.get(url, headers={"Range": "bytes=-100000"})
    assert tail.status_code == 206 and len(tail.content) == 100000
    start = await client.get(url, headers={"Range": "bytes=0-43"})
    with wave.open(io.BytesIO(start.content + b"\0" * 4)) as audio:
        assert audio.getnframes() * 2 * 2 == size - HEADER_SIZE


def test_wav_ranges_are_consistent_without_building_the_file() -> None:
    wav = Wav(AudioSpec.of("x" * 8, 7200, 2))  # two hours, ~460 MB
    assert wav.size == HEADER_SIZE + 7200 * 32000
    block = wav.block
    middle = b"".join(wav.read(wav.size // 2, wav.size // 2 + 3 * len(block), chunk_size=1000))
    offset = (wav.size // 2 - HEADER_SIZE) % len(block)
    assert middle == (block * 4)[offset : offset + 3 * len(block)]
    chunks = list(wav.read(0, 200_000))
    assert max(map(len, chunks)) <= 64 * 1024 and sum(map(len, chunks)) == 200_000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-500", (500, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("bytes=5-1", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        (None, None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=-0"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000)


async def test_mp3_is_encoded_once_for_concurrent_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[AudioSpec] = []

    def counting(spec: AudioSpec) -> bytes:
        calls.append(spec)
        return encode_mp3(spec)

    monkeypatch.setattr(audio, "encode_mp3", counting)
    cache = Mp3Cache(capacity=2)
    spec = AudioSpec.of("one", 2, 1)
    bodies: list[bytes] = []

    async def fetch() -> None:
        bodies.append(await cache.fetch(spec))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(fetch)
    assert len(calls) == 1 and len(set(bodies)) == 1 and len(bodies) == 4
    for name in ("two", "three"):
        await cache.fetch(AudioSpec.of(name, 1, 1))
    assert len(cache) == 2 and cache.get(spec) is None
