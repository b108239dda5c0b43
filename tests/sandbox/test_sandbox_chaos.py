"""Random failures (`app.sandbox.chaos`): the share, the mix, the seed, and the counts served."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from app.sandbox import DEMO, create_sandbox_app
from app.sandbox.chaos import FAILURE_MIX, STATS_PATH, Chaos

pytestmark = pytest.mark.anyio

BIRD = f"/workspaces/{DEMO.bird_workspace_id}/recordings"
BIRD_HEADERS = {"Authorization": f"AccessKey {DEMO.bird_access_key}"}


def statuses(chaos: Chaos, count: int) -> list[int | None]:
    return [None if (fault := chaos.draw("twilio")) is None else fault.status for _ in range(count)]


def test_a_seeded_share_of_requests_fails_with_the_mix() -> None:
    drawn = statuses(Chaos(0.1, seed=7), 20_000)
    failed = [status for status in drawn if status is not None]
    assert 0.09 < len(failed) / len(drawn) < 0.11
    assert set(failed) == {status for status, _ in FAILURE_MIX}
    assert failed.count(503) > failed.count(502) > failed.count(504)
    assert statuses(Chaos(0.1, seed=7), 20_000) == drawn  # the same seed, the same run
    assert statuses(Chaos(0.1, seed=8), 20_000) != drawn


def test_rate_zero_fails_nothing_but_counts_provider_requests_only() -> None:
    chaos = Chaos()
    assert [chaos.draw(p) for p in ("twilio", "bird", "bird", None)] == [None] * 4
    assert chaos.stats() == {
        "rate": 0.0,
        "seed": 0,
        "requests": {"twilio": 1, "bird": 2},
        "failures": {},
    }


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_rate_outside_0_to_1_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Chaos(rate)
    with pytest.raises(ValueError, match="between 0 and 1"):
        replace(DEMO, failure_rate=rate)


async def test_the_app_fails_with_the_providers_error_body_and_serves_the_counts() -> None:
    app = create_sandbox_app(replace(DEMO, failure_rate=1.0))
    sandbox = app.state.sandbox
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
    ) as client:
        sandbox.faults.inject("bird", 429)  # an injected fault comes first
        first = await client.get(BIRD, headers=BIRD_HEADERS)
        second = await client.get(BIRD, headers=BIRD_HEADERS)
        stats = (await client.get(STATS_PATH)).json()
    assert first.status_code == 429
    assert second.status_code in {503, 502, 504}
    assert set(second.json()) == {"code", "message"}  # Bird's error shape
    assert stats == {
        "rate": 1.0,
        "seed": DEMO.seed,
        "requests": {"bird": 1},  # the one no injected fault answered
        "failures": {str(second.status_code): 1},
    }
