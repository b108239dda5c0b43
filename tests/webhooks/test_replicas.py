"""Two gateway processes behind one real redis-server, as replicas are deployed: a provider's
delivery and its retry, reaching either replica, are worked on once.

The replicas are ``python -m app serve`` (tests/access/test_replicas.py starts them the same
way); the sandbox is served from this process so that its request log can be read, and it
signals each request it serves, so the test waits for the refresh without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from starlette.types import ASGIApp, Receive, Scope, Send

from app.sandbox import DEMO_TWILIO_AUTH_TOKEN, Sandbox, SandboxConfig, create_sandbox_app
from tests.access.test_replicas import (
    PASSWORD,
    Replica,
    replica_env,
    two_replicas,
)
from tests.servers import serve
from tests.support import RECORDING_QUERY, SIGNING_KEY, secrets_of, upstream_count
from tests.webhooks.support import BIRD_KEY, SIGNALWIRE_KEY, laml_signed, webhook_env

webhook_redis = factories.redis_proc(port=None, password=PASSWORD)  # type: ignore[arg-type]
PUBLIC = "https://gateway.example.com"


class Served:
    """An ASGI app in front of the sandbox that signals each request it has answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = threading.Condition()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                with self.answered:
                    self.answered.notify_all()


@dataclass(frozen=True)
class Replicas:
    sandbox: Sandbox
    served: Served
    one: Replica
    two: Replica
    secrets: tuple[str, ...]


@pytest.fixture
def replicas(webhook_redis: RedisExecutor, tmp_path: Path) -> Iterator[Replicas]:
    config = SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    served = Served(sandbox_app)
    with serve(served) as sandbox_url:
        # Behind one load balancer: the providers call its URL, whichever replica answers.
        own = webhook_env(config, sandbox_url) | {"GATEWAY_PUBLIC_URL": PUBLIC}
        env = replica_env(own, webhook_redis)
        secrets = (*secrets_of(config), SIGNING_KEY, PASSWORD, SIGNALWIRE_KEY, BIRD_KEY)
        with two_replicas(env, tmp_path, secrets) as (one, two):
            yield Replicas(sandbox_app.state.sandbox, served, one, two, secrets)


def test_a_delivery_and_its_retries_are_worked_on_once_across_replicas(
    replicas: Replicas,
) -> None:
    sandbox = replicas.sandbox
    rid = sandbox.sample_ids()["twilio"]
    params = [
        ("AccountSid", sandbox.account("twilio")),
        ("RecordingSid", rid),
        ("RecordingStatus", "completed"),
    ]
    delivery = laml_signed(f"{PUBLIC}/webhooks/twilio/default", params, DEMO_TWILIO_AUTH_TOKEN)
    outcomes = []
    for replica in (replicas.one, replicas.two, replicas.two, replicas.one):
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            answer = client.post(
                delivery.path, content=delivery.body, headers=dict(delivery.headers)
            )
        assert answer.status_code == 200, answer.text
        outcomes.append(answer.json()["outcome"])
    assert outcomes == ["accepted", "duplicate", "duplicate", "duplicate"]
    with replicas.served.answered:  # the one refresh, by replica one
        assert replicas.served.answered.wait_for(lambda: upstream_count(sandbox, rid) >= 1, 30)
    variables = {"provider": "TWILIO", "id": rid}
    for replica in (replicas.one, replicas.two):  # one joins its refresh; two reads Redis
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            body = client.post("/graphql", json={"query": RECORDING_QUERY, "variables": variables})
        assert body.json()["data"]["recording"]["id"] == rid
    assert upstream_count(sandbox, rid) == 1
