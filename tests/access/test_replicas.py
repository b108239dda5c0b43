"""Two gateway processes behind one Redis, as replicas behind a load balancer are deployed.

Each replica is ``python -m app serve`` in its own OS process, on its own loopback port,
configured only by its environment: the same tenants (``GATEWAY_CONFIG``), the same
signing key, and one real redis-server (with a password) as ``GATEWAY_CACHE_URL``. The
providers are one sandbox, served from this process so that its request log can be read.
A client may reach either replica for any request: rate budgets, listing cursors, media
links and cached recordings must all hold across them, and neither log may show a
traceback or a secret.

The processes start once for the module (a cold start is most of its runtime); Redis is
emptied after every test, so each test starts from no budget spent and nothing cached,
and what a test counts in the sandbox's log it counts from its own start.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis import Redis

from app.access.keys import new_key
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.config import PROVIDERS
from tests.access.support import TenantSpec, bearer, write_config
from tests.listing.support import LIST_QUERY, listed
from tests.media.support import mint_sync, token_of
from tests.servers import serve
from tests.support import RECORDING_QUERY, SIGNING_KEY, secrets_of, upstream_count

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "replicas-redis-password-0123456789"

# A server of its own, behind a password: the replicas must use it, and never log it.
replica_redis = factories.redis_proc(port=None, password=PASSWORD)  # type: ignore[arg-type]
replica_db = factories.redisdb("replica_redis")

ACME, GLOBEX, READER, OTHER = new_key(), new_key(), new_key(), new_key()
SECOND_ACCOUNTS = {"twilio": 1, "signalwire": 1, "bird": 1}
TENANTS = {
    "acme": TenantSpec(ACME, rate_limit="10/minute"),
    "globex": TenantSpec(GLOBEX, accounts=SECOND_ACCOUNTS, rate_limit="10/minute"),
    "reader": TenantSpec(READER),
    "other": TenantSpec(OTHER, accounts=SECOND_ACCOUNTS),
}
#: Attempts at /healthz while a replica starts, each followed by up to POLL seconds of
#: waiting for the process to exit (which ends the wait at once with its log).
READY_ATTEMPTS = 300
POLL = 0.1


@dataclass(frozen=True)
class Replica:
    """One gateway process: its base URL and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=bearer(key), timeout=30)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@dataclass(frozen=True)
class Deployment:
    """The sandbox both replicas call, and the replicas."""

    sandbox: Sandbox
    one: Replica
    two: Replica
    secrets: tuple[str, ...]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def replica_env(config_env: dict[str, str], redis: RedisExecutor) -> dict[str, str]:
    """This process's environment without any gateway or provider setting, plus ours."""
    own = ("GATEWAY_", "TWILIO_", "SIGNALWIRE_", "BIRD_")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return {
        **inherited,
        **config_env,
        "GATEWAY_CACHE_URL": f"redis://:{PASSWORD}@{redis.host}:{redis.port}/0",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }


def start(env: dict[str, str], directory: Path) -> Replica:
    """``python -m app serve`` on a free port, its output in two files under ``directory``."""
    directory.mkdir()
    port = free_port()
    stdout, stderr = directory / "stdout.log", directory / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
    return Replica(f"http://127.0.0.1:{port}", process, stdout, stderr)


def wait_ready(replica: Replica) -> None:
    """Poll /healthz until it answers; fail at once with the log if the process exits."""
    for _ in range(READY_ATTEMPTS):
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{replica.url}/healthz", timeout=5).status_code == 200:
                return
        try:
            code = replica.process.wait(timeout=POLL)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"replica exited with {code} before serving:\n{replica.output()}")
    raise AssertionError(f"replica not ready after {READY_ATTEMPTS} attempts:\n{replica.output()}")


def stop(replica: Replica) -> bool:
    """SIGTERM: uvicorn shuts down gracefully (its lifespan closes Redis and upstream).
    Whether it did within 30 s; if not, it is killed."""
    replica.process.terminate()
    try:
        replica.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait()
        return False
    return True


def assert_clean(replica: Replica, secrets: Sequence[str]) -> None:
    """The replica logged (its start, at least), and nothing with a traceback or a secret."""
    output = replica.output()
    assert "Application startup complete" in output, output
    assert "Traceback" not in output, output
    leaked = [index for index, secret in enumerate(secrets) if secret in output]
    assert leaked == [], f"secrets #{leaked} in the log of {replica.url}"


@contextlib.contextmanager
def two_replicas(
    env: dict[str, str], directory: Path, secrets: Sequence[str]
) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas of ``env`` started at once, then each waited for; on exit both stopped by
    SIGTERM (within 30 s, or the test fails), their whole logs, shutdown included, clean."""
    replicas: list[Replica] = []
    try:
        for name in ("one", "two"):
            replicas.append(start(env, directory / name))
        for replica in replicas:
            wait_ready(replica)
        yield replicas[0], replicas[1]
    finally:
        stopped = [stop(replica) for replica in replicas]
    assert all(stopped), f"a replica did not stop on SIGTERM within 30 s: {stopped}"
    for replica in replicas:
        assert "Application shutdown complete" in replica.output()
        assert_clean(replica, secrets)


@pytest.fixture(scope="module")
def deployment(
    replica_redis: RedisExecutor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    config = SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    sandbox: Sandbox = sandbox_app.state.sandbox
    directory = tmp_path_factory.mktemp("replicas")
    with serve(sandbox_app) as sandbox_url:
        config_env = write_config(directory / "gateway.toml", config, TENANTS, base_url=sandbox_url)
        env = replica_env(config_env, replica_redis)
        provider_secrets = [value for name, value in config_env.items() if "SECRET_" in name]
        secrets = (
            *(spec.key for spec in TENANTS.values()),
            *provider_secrets,
            *secrets_of(config),
            SIGNING_KEY,
            PASSWORD,
        )
        with two_replicas(env, directory, secrets) as (one, two):
            yield Deployment(sandbox, one, two, secrets)


@pytest.fixture(autouse=True)
def empty_redis(replica_db: Redis) -> None:
    """pytest-redis empties the server after each test: no budget or entry outlives it."""


def post(
    client: httpx.Client, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    return client.post("/graphql", json={"query": query, "variables": variables or {}})


def missing_refs(start: int, count: int) -> str:
    """A query costing ``count`` units: that many refs to Twilio recordings that do not exist
    (each one upstream request, answered NOT_FOUND)."""
    items = ", ".join(
        f'{{provider: TWILIO, id: "RE{index:032x}"}}' for index in range(start, start + count)
    )
    return f"{{ recordingsByRef(refs: [{items}]) {{ id }} }}"


def spend(client: httpx.Client, start: int, units: int) -> None:
    """Spend ``units`` of the client's budget on requests that run (and reach upstream)."""
    response = post(client, missing_refs(start, units))
    assert response.status_code == 200, response.text
    codes = [error["extensions"]["code"] for error in response.json()["errors"]]
    assert codes == ["NOT_FOUND"] * units


def recording_query(provider: Provider, rid: str) -> tuple[str, dict[str, Any]]:
    return RECORDING_QUERY, {"provider": provider.name, "id": rid}


def assert_rate_limited(response: httpx.Response, opened: float) -> None:
    """429 with Retry-After: the budget is full until its window (opened at ``opened``)
    ends, 60 s after its first hit."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 60 - (time.monotonic() - opened) - 1 <= retry_after <= 60
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == retry_after


# --- rate limits: one budget per tenant, whichever replica is reached --------------------


def test_a_budget_spent_across_both_replicas_is_full_on_either(deployment: Deployment) -> None:
    sandbox = deployment.sandbox
    fresh = sandbox.sample_ids()["twilio"]
    opened = time.monotonic()
    with deployment.one.client(ACME) as one, deployment.two.client(ACME) as two:
        spend(one, 0, 6)
        spend(two, 6, 4)
        seen = len(sandbox.requests)
        for replica in (one, two):
            assert_rate_limited(post(replica, *recording_query(Provider.TWILIO, fresh)), opened)
    assert len(sandbox.requests) == seen  # refused before any upstream request
    assert upstream_count(sandbox, fresh) == 0


def test_one_tenants_spending_leaves_anothers_budget_whole(deployment: Deployment) -> None:
    opened = time.monotonic()
    with (
        deployment.one.client(ACME) as acme_one,
        deployment.two.client(ACME) as acme_two,
        deployment.one.client(GLOBEX) as globex_one,
        deployment.two.client(GLOBEX) as globex_two,
    ):
        spend(acme_one, 0, 10)
        assert_rate_limited(post(acme_two, missing_refs(10, 1)), opened)
        # All ten of globex's units are there, on the replica acme was refused by ...
        spend(globex_two, 0, 4)
        spend(globex_one, 4, 6)
        # ... and counted as one budget too.
        assert_rate_limited(post(globex_two, missing_refs(10, 1)), opened)
        assert_rate_limited(post(acme_one, missing_refs(10, 1)), opened)


# --- cursors and media links: minted on one replica, good on the other -------------------


def pages(clients: Sequence[httpx.Client], first: int) -> list[list[tuple[str, str]]]:
    """Walk the listing to its end, page ``n`` asked of ``clients[n % len(clients)]``."""
    walked: list[list[tuple[str, str]]] = []
    after = None
    for number in range(100):
        client = clients[number % len(clients)]
        response = post(client, LIST_QUERY, {"first": first, "after": after})
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        connection = body["data"]["recordings"]
        walked.append([(e["node"]["provider"], e["node"]["id"]) for e in connection["edges"]])
        if not connection["pageInfo"]["hasNextPage"]:
            return walked
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("no end after 100 pages")


def test_a_cursor_from_one_replica_continues_on_the_other(deployment: Deployment) -> None:
    sandbox = deployment.sandbox
    records = [
        record
        for provider in PROVIDERS
        for record in sandbox.dataset.listing(provider, sandbox.account(provider, 0))
        if listed(record)
    ]
    records.sort(key=lambda r: (-r.created.timestamp(), Provider(r.provider).name, r.id))
    everything = [(Provider(r.provider).name, r.id) for r in records]
    with deployment.one.client(READER) as one, deployment.two.client(READER) as two:
        alone = pages([one], 20)
        assert len(alone) >= 3
        assert [ref for page in alone for ref in page] == everything
        assert pages([one, two], 20) == alone
        assert pages([two, one], 20) == alone


def test_a_cursor_is_refused_to_another_tenant_on_the_other_replica(
    deployment: Deployment,
) -> None:
    sandbox = deployment.sandbox
    with deployment.one.client(READER) as reader, deployment.two.client(OTHER) as other:
        body = post(reader, LIST_QUERY, {"first": 5}).json()
        cursor = body["data"]["recordings"]["pageInfo"]["endCursor"]
        seen = len(sandbox.requests)
        refused = post(other, LIST_QUERY, {"first": 5, "after": cursor}).json()
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
    assert len(sandbox.requests) == seen


def test_a_media_link_from_one_replica_streams_from_the_other(deployment: Deployment) -> None:
    rid = deployment.sandbox.sample_ids()["twilio"]
    with deployment.one.client(READER) as one:
        token = token_of(mint_sync(one, Provider.TWILIO, rid))
    # /media/{token} takes no credentials (it goes into <audio src>).
    with httpx.Client(timeout=30) as anonymous:
        part = anonymous.get(f"{deployment.two.url}/media/{token}", headers={"range": "bytes=0-99"})
        whole = anonymous.get(f"{deployment.one.url}/media/{token}")
    assert part.status_code == 206, part.text
    size = int(whole.headers["content-length"])
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.headers["content-type"] == "audio/mpeg"
    assert part.content == whole.content[:100] and len(part.content) == 100
    assert whole.status_code == 200 and size > 100


# --- the recording cache: one copy for every replica ------------------------------------


def test_a_recording_read_through_one_replica_is_cached_for_the_other(
    deployment: Deployment,
) -> None:
    sandbox = deployment.sandbox
    with deployment.one.client(READER) as one, deployment.two.client(READER) as two:
        for provider in Provider:
            rid = sandbox.sample_ids()[provider.value]
            before = upstream_count(sandbox, rid)
            first = post(one, *recording_query(provider, rid)).json()
            assert "errors" not in first and first["data"]["recording"]["id"] == rid, first
            assert upstream_count(sandbox, rid) == before + 1
            assert post(two, *recording_query(provider, rid)).json() == first
            assert upstream_count(sandbox, rid) == before + 1


# --- logs ----------------------------------------------------------------------------


def test_refusals_leave_no_traceback_and_no_secret_in_either_log(deployment: Deployment) -> None:
    """Requests that are refused or fail, on each replica; its log so far is clean (the
    fixture checks both logs again once the replicas have stopped)."""
    for replica in (deployment.one, deployment.two):
        with replica.client(READER) as client, httpx.Client(base_url=replica.url) as anonymous:
            wrong = anonymous.post(
                "/graphql", json={"query": "{ __typename }"}, headers=bearer(new_key())
            )
            assert wrong.status_code == 401
            for body in (b"\xff\xfe{}", b"[1]", b'"x"', b"null"):
                response = client.post(
                    "/graphql", content=body, headers={"content-type": "application/json"}
                )
                assert response.status_code == 400, (body, response.text)
            assert anonymous.get("/media/not-a-token").status_code in (403, 404)
            missing = post(client, *recording_query(Provider.BIRD, "no-such-recording"))
            assert missing.status_code == 200 and missing.json()["errors"]
        assert_clean(replica, deployment.secrets)
