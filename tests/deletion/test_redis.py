"""A deletion through one replica, seen by another sharing the same Redis (pytest-redis's real
redis-server): the recording is NOT_FOUND there too, and the answer that replica kept is gone,
with no request to the provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from starlette.applications import Starlette

from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.access.support import write_config
from tests.deletion.support import TENANTS, stand
from tests.support import upstream_count

pytestmark = pytest.mark.anyio


async def test_a_deletion_on_one_replica_is_seen_by_the_other(
    redis_proc: Any,
    redisdb: Redis,
    tmp_path: Path,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    env = write_config(tmp_path / "gateway.toml", sandbox_config, TENANTS)
    env["GATEWAY_CACHE_URL"] = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    settings = Settings.from_env(env)
    rid = sandbox.sample_ids()["bird"]
    async with stand(settings, sandbox_app) as a, stand(settings, sandbox_app) as b:
        assert (await a.read(Provider.BIRD, rid)).headers["x-cache"] == "MISS"
        assert (await a.read(Provider.BIRD, rid)).headers["x-cache"] == "HIT"
        deleted = await b.delete(Provider.BIRD, rid)
        assert deleted.json()["data"]["deleteRecording"]["deleted"] is True
        asked = upstream_count(sandbox, rid)
        after = await a.read(Provider.BIRD, rid)
    assert after.headers["x-cache"] == "MISS"
    body = after.json()
    assert body["data"] == {"recording": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert upstream_count(sandbox, rid) == asked
