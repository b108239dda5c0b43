"""The response cache's Redis entries, against a real redis-server (pytest-redis): what is
stored, for how long, tagged how; and a Redis that is not there costs nothing but hits."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from redis import Redis
from starlette.applications import Starlette

from app.cache import RecordingCache
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from tests.responses.support import gateway, one, settings_for
from tests.support import secrets_of

pytestmark = pytest.mark.anyio

TTL = 100


def redis_url(proc: Any) -> str:
    return f"redis://{proc.host}:{proc.port}/0"


def keys(db: Redis, pattern: str = "*") -> list[bytes]:
    """The keys as stored (pytest-redis's client does not decode them)."""
    return [key for key in db.keys(pattern) if isinstance(key, bytes)]


async def test_an_answer_is_stored_with_its_ttl_and_tagged_with_its_recording(
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    settings = settings_for(
        sandbox_config, GATEWAY_CACHE_URL=redis_url(redis_proc), GATEWAY_CACHE_TTL=str(TTL)
    )
    async with gateway(settings, sandbox_app) as client:
        miss = await client.get("/graphql", params=one("TWILIO", rid))
    [answer] = keys(redisdb, "rg:responses:v1:answer:*")
    [tag] = keys(redisdb, "rg:responses:v1:tag:*")
    assert redisdb.smembers(tag) == {answer}
    [recording] = keys(redisdb, f"rg:v3:*:{rid}")
    assert len(keys(redisdb)) == 3
    assert tag.decode() == RecordingCache.tag_key(recording.decode())
    assert 0 < redisdb.pttl(answer) <= TTL * 1000
    assert TTL - 1 <= redisdb.ttl(tag) <= TTL
    value = redisdb.get(answer)
    assert isinstance(value, bytes) and value.endswith(b"\n" + miss.content)
    stored = b" ".join([*keys(redisdb), value])
    for secret in secrets_of(sandbox_config):
        assert secret.encode() not in stored
    assert sandbox_config.twilio_account_sid.encode() not in b" ".join(keys(redisdb))
    assert Provider.TWILIO.value.encode() not in answer + tag


async def test_without_redis_every_answer_is_worked_out(
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings_for(sandbox_config, GATEWAY_CACHE_URL=f"redis://127.0.0.1:{port}/0")
    rid = sandbox.sample_ids()["twilio"]
    with caplog.at_level(logging.WARNING):
        async with gateway(settings, sandbox_app) as client:
            answers = [await client.get("/graphql", params=one("TWILIO", rid)) for _ in range(3)]
    assert all(a.status_code == 200 and a.headers["x-cache"] == "MISS" for a in answers)
    assert answers[0].content == answers[2].content
    # One outage of the one Redis, shared with the recording cache: logged once, by it. (The
    # event bus, which has other consequences to tell, logs its own once: app.events.redis.)
    down = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert (
        down.count(
            "cache unavailable (ConnectionError); answering from the providers until it is back"
        )
        == 1
    )
    assert [m for m in down if not m.startswith("event bus:")] == [
        "cache unavailable (ConnectionError); answering from the providers until it is back"
    ]
    assert len([m for m in down if m.startswith("event bus:")]) == 1
    assert not [r for r in caplog.records if r.name == "app.responses"]
