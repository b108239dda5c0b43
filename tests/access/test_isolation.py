"""Isolation between tenants (issue 11, "zero tolerance"), tried on real overlaps.

Three tenants share one gateway, one cache and one upstream (``tests/access/isolation.py``):
``acme_alpha`` and ``bravo_brands`` read different accounts of every provider, and
``charlie_calls`` reads a third Twilio account and the Bird account ``acme_alpha`` reads.
Recordings of every account have the same shape, so a wrong cache entry, cursor or link
would answer with a plausible recording: only its account tells it apart.

``test_random_operations_never_leak`` runs 10,000 operations per cache backend (memory, and a
real redis-server) drawn from a seeded ``random.Random`` (``ISOLATION_SEED``, fixed by default;
every failure names it and the operation): recordings by id and by ref with ids of every
tenant's accounts, listing pages continued with their cursors, another tenant's cursor and
forged ones, media links minted and fetched by anyone holding them, and concurrent bursts.
After every operation it checks that each recording returned belongs to the caller's
account, that no answer names another account, a secret or another tenant, that every
upstream request went to the caller's own account with its own credentials, and that the
cache answered exactly when this tenant had read the recording before (another tenant
reading it, on the same account or not, must not warm it).

The tests before it pin the sharpest cases one by one: another tenant's cursor (even on
the same account) refused like a forged one with no upstream request, the same refusal
whether or not the other tenant exists, one cache entry per tenant on a shared account,
single-flight per tenant, and media links as bearer capabilities bound to their minter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from redis import Redis
from starlette.applications import Starlette

from app.sandbox import Sandbox, SandboxConfig
from app.sandbox.audio import AudioSpec, Wav
from app.settings import Settings
from tests.access.isolation import (
    ACCOUNTS_PER_PROVIDER,
    ALPHA,
    BRAVO,
    CHARLIE,
    MEMBERS,
    Member,
    World,
    credentials,
    write_members,
)
from tests.access.support import bearer
from tests.media.support import claims, flipped, token_of
from tests.support import gateway_client, upstream_count

pytestmark = pytest.mark.anyio

SEED = int(os.environ.get("ISOLATION_SEED", "20260311"))
OPS_PER_BACKEND = 10_000
#: Bytes of audio each media fetch asks for (a Range): the WAV header and a second of tone.
AUDIO_PREFIX = 2048

FIELDS = "provider id accountId callId conferenceId status from to raw"
RECORDING = f"""query One($provider: Provider!, $id: ID!) {{
  recording(provider: $provider, id: $id) {{ {FIELDS} }}
}}"""
BY_REF = f"""query Many($refs: [RecordingRefInput!]!) {{
  recordingsByRef(refs: $refs) {{ {FIELDS} }}
}}"""
LIST = f"""query List($first: Int, $after: String, $filter: RecordingFilter) {{
  recordings(first: $first, after: $after, filter: $filter) {{
    edges {{ cursor node {{ {FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
MEDIA = """query Media($provider: Provider!, $id: ID!, $format: MediaFormat!) {
  recording(provider: $provider, id: $id) { provider id accountId status mediaUrl(format: $format) }
}"""


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(accounts_per_provider=ACCOUNTS_PER_PROVIDER)


@dataclass(frozen=True)
class Backend:
    """A cache for the gateway: its ``GATEWAY_CACHE_URL``, and the Redis behind it if any."""

    name: str
    url: str
    redis: Redis | None = None


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend("memory", "memory://")
    proc = request.getfixturevalue("redis_proc")
    db: Redis = request.getfixturevalue("redisdb")
    db.flushall()
    return Backend("redis", f"redis://{proc.host}:{proc.port}/0", db)


def gateway_settings(
    tmp_path: Path,
    config: SandboxConfig,
    backend: Backend,
    members: Sequence[Member] = MEMBERS,
) -> Settings:
    """The three tenants over ``backend``. Every entry lives an hour, NOT_FOUND and
    recordings still running included, so whether a read is a hit never depends on time; and a
    Redis call may take a second before it counts as a failure (bypassing the cache), so that
    a loaded machine never turns a hit into an upstream request."""
    env = write_members(tmp_path / f"{backend.name}.toml", config, members)
    env |= {
        "GATEWAY_CACHE_URL": backend.url,
        "GATEWAY_CACHE_TTL_ACTIVE": "3600",
        "GATEWAY_CACHE_TTL_NOT_FOUND": "3600",
        "GATEWAY_CACHE_TIMEOUT": "1",
    }
    return Settings.from_env(env)


@pytest.fixture
async def client(
    tmp_path: Path, sandbox_config: SandboxConfig, backend: Backend, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(tmp_path, sandbox_config, backend)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client


async def ask(
    client: httpx.AsyncClient, member: Member | None, query: str, **variables: Any
) -> dict[str, Any]:
    headers = bearer(member.key) if member is not None else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def retampered(cursor: str) -> str:
    """``cursor`` with the first character of its signature changed (the payload intact)."""
    payload, dot, signature = cursor.rpartition(".")
    changed = "B" if signature[0] != "B" else "C"
    return payload + dot + changed + signature[1:]


MEMORY = Backend("memory", "memory://")
BIRD_ONLY = {"providers": ["BIRD"]}


def listed(body: Mapping[str, Any]) -> list[str]:
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["recordings"]["edges"]]


def end_cursor(body: Mapping[str, Any]) -> str:
    cursor: str = body["data"]["recordings"]["pageInfo"]["endCursor"]
    return cursor


async def test_a_cursor_of_another_tenant_is_refused_before_any_upstream_request(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings = gateway_settings(tmp_path, sandbox_config, MEMORY)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        first = await ask(client, ALPHA, LIST, first=5, filter=BIRD_ONLY)
        cursor = end_cursor(first)
        edge = first["data"]["recordings"]["edges"][2]["cursor"]
        # The cursor works for the tenant it was issued to: the next page follows on.
        after = await ask(client, ALPHA, LIST, first=5, after=cursor, filter=BIRD_ONLY)
        assert len(set(listed(first) + listed(after))) == 10
        forged = await ask(client, ALPHA, LIST, first=5, after=retampered(cursor), filter=BIRD_ONLY)
        assert forged["data"] is None
        assert [e["extensions"]["code"] for e in forged["errors"]] == ["BAD_USER_INPUT"]
        # charlie_calls reads the very Bird account acme_alpha does, bravo_brands another.
        for member, presented in [(CHARLIE, cursor), (CHARLIE, edge), (BRAVO, cursor)]:
            sandbox.requests.clear()
            body = await ask(client, member, LIST, first=5, after=presented, filter=BIRD_ONLY)
            assert body == forged, member.name
            assert sandbox.requests == [], member.name


async def test_a_tenant_cannot_tell_whether_another_tenant_exists(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    transport = httpx.ASGITransport(app=sandbox_app)
    # Another gateway with the same signing key, whose tenant this one does not have.
    ghost = Member("ghost_tenant", ALPHA.key, ALPHA.accounts)
    (tmp_path / "ghost").mkdir()
    elsewhere = gateway_settings(tmp_path / "ghost", sandbox_config, MEMORY, [ghost])
    async with gateway_client(elsewhere, transport) as other:
        of_ghost = end_cursor(await ask(other, ghost, LIST, first=5, filter=BIRD_ONLY))
    settings = gateway_settings(tmp_path, sandbox_config, MEMORY)
    async with gateway_client(settings, transport) as client:
        of_bravo = end_cursor(await ask(client, BRAVO, LIST, first=5, filter=BIRD_ONLY))
        of_alpha = end_cursor(await ask(client, ALPHA, LIST, first=5, filter=BIRD_ONLY))
        sandbox.requests.clear()
        answers = {
            "a cursor of bravo_brands": of_bravo,
            "a cursor of a tenant this gateway does not have": of_ghost,
            "its own cursor, altered": retampered(of_alpha),
            "no cursor at all": "not-a-cursor",
        }
        bodies = {
            what: await ask(client, ALPHA, LIST, first=5, after=cursor, filter=BIRD_ONLY)
            for what, cursor in answers.items()
        }
    assert sandbox.requests == []
    (error,) = bodies["no cursor at all"]["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert all(body == bodies["no cursor at all"] for body in bodies.values()), bodies
    for name in ("bravo", "ghost", "tenant"):
        assert name not in error["message"]


async def test_tenants_on_one_account_have_their_own_cache_entries(
    tmp_path: Path,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    backend: Backend,
) -> None:
    rid = sandbox.sample_ids()["bird"]  # of Bird account 0: acme_alpha's and charlie_calls'
    account = sandbox.account("bird", 0)
    # The recording cache's entries: no answer kept whole may stand in for them here.
    settings = dataclasses.replace(
        gateway_settings(tmp_path, sandbox_config, backend), response_cache=False
    )

    def keys() -> set[bytes]:
        """The cache's keys in Redis (pytest-redis's client does not decode them)."""
        assert backend.redis is not None
        found = {key for key in backend.redis.keys("rg:v3:*") if isinstance(key, bytes)}
        assert len(found) == len(backend.redis.keys("*"))
        assert all(key.endswith(rid.encode()) for key in found), found
        return found

    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        for member in (ALPHA, CHARLIE, ALPHA, CHARLIE):
            body = await ask(client, member, RECORDING, provider="BIRD", id=rid)
            assert body["data"]["recording"]["accountId"] == account, body
        assert upstream_count(sandbox, rid) == 2  # once per tenant, then each from its entry
        if backend.redis is not None:
            assert len(keys()) == 2
        # bravo_brands' account has no such recording: its NOT_FOUND is its own too.
        for _ in range(2):
            body = await ask(client, BRAVO, RECORDING, provider="BIRD", id=rid)
            assert body["data"]["recording"] is None
            assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
        for member in (ALPHA, CHARLIE):
            body = await ask(client, member, RECORDING, provider="BIRD", id=rid)
            assert body["data"]["recording"]["accountId"] == account, body
        assert upstream_count(sandbox, rid) == 3
        if backend.redis is not None:
            assert len(keys()) == 3


class HeldUpstream(httpx.AsyncBaseTransport):
    """The sandbox, with every request that names one recording held until ``release``;
    ``full`` is set once ``hold`` of them are held at once."""

    def __init__(self, app: Starlette, rid: str, hold: int) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._rid = rid
        self._hold = hold
        self.held = 0
        self.full = anyio.Event()
        self.release = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._rid in request.url.path:
            self.held += 1
            if self.held == self._hold:
                self.full.set()
            await self.release.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_single_flight_never_merges_two_tenants(
    tmp_path: Path,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    backend: Backend,
) -> None:
    """Both tenants read one recording of the account they share at the same moment: each
    read is its own tenant's fetch, both in flight at once (merged, only one would be)."""
    rid = sandbox.sample_ids()["bird"]
    upstream = HeldUpstream(sandbox_app, rid, hold=2)
    settings = gateway_settings(tmp_path, sandbox_config, backend)
    answers: dict[str, dict[str, Any]] = {}
    async with gateway_client(settings, upstream) as client:

        async def read(member: Member) -> None:
            answers[member.name] = await ask(client, member, RECORDING, provider="BIRD", id=rid)

        async with anyio.create_task_group() as group:
            group.start_soon(read, ALPHA)
            group.start_soon(read, CHARLIE)
            with anyio.move_on_after(10):  # a bound, not a pause: both are held within ms
                await upstream.full.wait()
            held = upstream.held
            upstream.release.set()
    assert held == 2, "the two tenants' reads were merged into one fetch"
    assert upstream_count(sandbox, rid) == 2
    assert set(answers) == {ALPHA.name, CHARLIE.name}
    for body in answers.values():
        assert body["data"]["recording"]["accountId"] == sandbox.account("bird", 0), body


async def test_a_media_link_serves_its_minters_recording_to_anyone_holding_it(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """A link is a bearer capability: whoever holds it gets the audio, but only ever the
    recording its minter named, read with the minter's account."""
    settings = gateway_settings(tmp_path, sandbox_config, MEMORY)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        for minter in (ALPHA, BRAVO, CHARLIE):
            index = minter.accounts["twilio"]
            rid = sandbox.sample_ids(index)["twilio"]
            minted = await ask(client, minter, MEDIA, provider="TWILIO", id=rid, format="WAV")
            url = minted["data"]["recording"]["mediaUrl"]
            record = sandbox.dataset.get("twilio", rid)
            assert record is not None
            wav = Wav(AudioSpec.of(record.id, record.duration, record.channels))
            for holder in (ALPHA, BRAVO, CHARLIE, None):
                sandbox.requests.clear()
                headers = {"range": "bytes=0-1023"} | (bearer(holder.key) if holder else {})
                response = await client.get(url, headers=headers)
                assert response.status_code == 206
                assert response.content == b"".join(wav.read(0, 1024))
                (seen,) = sandbox.requests
                assert f"/Accounts/{sandbox.account('twilio', index)}/" in seen.path
        # One recording of one account, minted by two tenants: two links, each its tenant's.
        bird = sandbox.sample_ids()["bird"]
        links = [
            (await ask(client, member, MEDIA, provider="BIRD", id=bird, format="MP3"))["data"][
                "recording"
            ]["mediaUrl"]
            for member in (ALPHA, CHARLIE)
        ]
    assert len({claims(token_of(link))["t"] for link in links}) == 2


# ---------------------------------------------------------------------------------------
# The randomized run
# ---------------------------------------------------------------------------------------


@dataclass
class Session:
    """One member paging through one listing with its end cursors."""

    providers: list[str] | None
    first: int
    cursor: str | None = None
    seen: list[tuple[str, str]] = field(default_factory=list)

    @property
    def filter(self) -> dict[str, Any] | None:
        return None if self.providers is None else {"providers": self.providers}


@dataclass(frozen=True)
class Page:
    """A listing page as the run keeps it: its recordings, its cursors (the end cursor
    last), and whether more follows."""

    items: list[tuple[str, str]]
    cursors: list[str]
    more: bool


@dataclass(frozen=True)
class Link:
    """A media URL one member minted, and what it must serve."""

    url: str
    minter: Member
    provider: str
    rid: str
    format: str


@dataclass
class Tally:
    """What the run did, and everything it found wrong."""

    ops: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Run:
    """Random operations by the three members, each checked as it completes."""

    def __init__(
        self, client: httpx.AsyncClient, sandbox: Sandbox, rng: random.Random, backend: str
    ) -> None:
        self.client = client
        self.sandbox = sandbox
        self.rng = rng
        self.backend = backend
        self.world = World(sandbox)
        self.tally = Tally()
        self.everything = sorted([*self.world.records, *self.world.hidden])
        self.ready = {
            member.name: sorted(
                key
                for key, record in self.world.records.items()
                if record.ready and self.world.own(member, *key)
            )
            for member in MEMBERS
        }
        self.never_told = {m.name: self.world.never_told(m) for m in MEMBERS}
        self.never_used = {m.name: self.world.never_used_for(m) for m in MEMBERS}
        # (member, provider, id) the member has read: its own cache entry is warm.
        self.warm: set[tuple[str, str, str]] = set()
        self.recent: dict[str, deque[tuple[str, str]]] = {m.name: deque(maxlen=40) for m in MEMBERS}
        self.sessions: dict[str, Session | None] = {m.name: None for m in MEMBERS}
        self.cursors: dict[str, deque[tuple[str, dict[str, Any] | None]]] = {
            m.name: deque(maxlen=32) for m in MEMBERS
        }
        self.links: deque[Link] = deque(maxlen=64)
        # provider -> the NOT_FOUND message of an id that exists nowhere, the id as "<id>"
        self.not_found: dict[str, str] = {}
        self.refused = ""  # the message of a forged cursor
        self.audio: dict[tuple[str, str, str], tuple[bytes, int]] = {}
        self.current = ""
        self.step = 0
        self.kinds: list[tuple[str, Callable[[], Awaitable[None]], int]] = [
            ("read_one", self.read_one, 30),
            ("read_by_ref", self.read_by_ref, 14),
            ("list_page", self.list_page, 9),
            ("resume_edge", self.resume_edge, 2),
            ("foreign_cursor", self.foreign_cursor, 5),
            ("forged_cursor", self.forged_cursor, 2),
            ("mint", self.mint, 12),
            ("fetch", self.fetch, 10),
            ("forged_link", self.forged_link, 2),
            ("burst", self.burst, 1),
        ]

    # -- bookkeeping -------------------------------------------------------------------

    def where(self) -> str:
        return f"[seed {SEED}, {self.backend}, op {self.step}: {self.current}]"

    def problem(self, what: str) -> None:
        self.tally.problems.append(f"{self.where()} {what}")

    def leak(self, what: str) -> None:
        self.tally.leaks.append(f"{self.where()} {what}")

    def scan(self, member: Member, text: str) -> None:
        """Nothing in an answer to ``member`` names what it must never be told."""
        for what, value in self.never_told[member.name]:
            if value in text:
                self.leak(f"an answer to {member.name} names {what}")

    def upstream(self, owner: Member, *, allowed: Sequence[Member] = ()) -> None:
        """Every upstream request went to an account of ``owner`` (or of one of ``allowed``,
        in a burst) with its credentials, and named nothing of any other account."""
        for seen in self.sandbox.requests:
            text = seen.url + " " + credentials(seen.headers.get("authorization", ""))
            candidates = [owner, *allowed]
            authorized = "authorization" in seen.headers
            if not any(
                self._upstream_fits(member, seen.provider, text, authorized=authorized)
                for member in candidates
            ):
                who = ", ".join(m.name for m in candidates)
                self.leak(f"an upstream request ({seen.method} {seen.path}) not made as {who}")

    def _upstream_fits(
        self, member: Member, provider: str | None, text: str, *, authorized: bool
    ) -> bool:
        if any(value in text for _, value in self.never_used[member.name]):
            return False
        if provider == "s3":  # a presigned URL the member's own Bird account handed out
            return True
        account = self.world.account(member, provider or "")
        if account is None or account not in text:
            return False
        # Where a request carries credentials, they are the member's own for that account.
        return not authorized or self.world.secret(member, provider or "") in text

    def fetched(self, member: Member, wanted: Sequence[tuple[str, str]]) -> None:
        """Exactly the recordings ``member`` had not read before were fetched, once each."""
        distinct = list(dict.fromkeys(wanted))
        cold = [
            (p, rid)
            for p, rid in distinct
            if self.world.account(member, p) is not None and (member.name, p, rid) not in self.warm
        ]
        fetches = len(self.sandbox.requests)
        if fetches != len(cold):
            self.problem(f"{fetches} upstream requests for {len(cold)} recordings not yet cached")
        for p, rid in cold:
            if upstream_count(self.sandbox, rid) != 1:
                self.problem(f"{p} {rid} was not fetched exactly once")
        for p, rid in distinct:
            if self.world.account(member, p) is not None:
                self.warm.add((member.name, p, rid))

    def recording(self, member: Member, item: Mapping[str, Any]) -> tuple[str, str]:
        """A recording answered to ``member`` is of the account it reads there."""
        provider, rid = str(item["provider"]).lower(), str(item["id"])
        account = self.world.account(member, provider)
        record = self.world.records.get((provider, rid))
        if account is None or item["accountId"] != account:
            self.leak(f"{member.name} got {provider} {rid} of account {item['accountId']!r}")
        elif record is None or record.account != account:
            self.leak(f"{member.name} got {provider} {rid}, which its account does not hold")
        return provider, rid

    def answer(
        self,
        member: Member,
        item: Mapping[str, Any] | None,
        errors: list[dict[str, Any]],
        provider: str,
        rid: str,
    ) -> None:
        """One item of an answer, with the errors at its path, as ``World.outcome`` says."""
        expected = self.world.outcome(member, provider, rid)
        if item is not None:
            got = self.recording(member, item)
            if got != (provider, rid):
                self.problem(f"asked for {provider} {rid}, got {got}")
        if expected is None:
            if item is None or errors:
                self.problem(f"{member.name} did not get its own {provider} {rid}: {errors}")
            return
        codes = [error["extensions"]["code"] for error in errors]
        if item is not None or codes != [expected]:
            self.problem(f"{provider} {rid} for {member.name}: {codes}, expected {expected}")
        elif expected == "NOT_FOUND":
            message = errors[0]["message"]
            if message.replace(rid, "<id>") != self.not_found[provider]:
                self.problem(f"NOT_FOUND says {message!r}: unlike an id that exists nowhere")

    async def post(
        self, member: Member, query: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One GraphQL operation as ``member``, its answer scanned."""
        self.sandbox.requests.clear()
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=bearer(member.key)
        )
        self.tally.ops += 1
        self.scan(member, response.text)
        if response.status_code != 200:
            self.problem(f"HTTP {response.status_code}: {response.text[:200]}")
            return {"data": None, "errors": []}
        body: dict[str, Any] = response.json()
        return body

    # -- drawing -----------------------------------------------------------------------

    def member(self) -> Member:
        return self.rng.choice(MEMBERS)

    def draw(self, member: Member) -> tuple[str, str]:
        """A recording to ask for: one the member asked for lately (a warm cache), one of
        any account (mostly another tenant's), or one that exists nowhere."""
        roll = self.rng.random()
        recent = self.recent[member.name]
        if roll < 0.4 and recent:
            return self.rng.choice(recent)
        if roll < 0.45:
            provider = self.rng.choice(["twilio", "signalwire", "bird"])
            return provider, self.nowhere(provider)
        key = self.rng.choice(self.everything)
        recent.append(key)
        return key

    def nowhere(self, provider: str) -> str:
        bits = self.rng.getrandbits(128)
        if provider == "twilio":
            return f"RE{bits:032x}"
        return str(uuid.UUID(int=bits, version=4))

    # -- operations --------------------------------------------------------------------

    async def read_one(self) -> None:
        member = self.member()
        provider, rid = self.draw(member)
        self.current = f"{member.name} reads {provider} {rid}"
        body = await self.post(member, RECORDING, {"provider": provider.upper(), "id": rid})
        item = (body.get("data") or {}).get("recording")
        self.answer(member, item, body.get("errors", []), provider, rid)
        self.upstream(member)
        self.fetched(member, [(provider, rid)])

    async def read_by_ref(self) -> None:
        member = self.member()
        refs = [self.draw(member) for _ in range(self.rng.randint(1, 8))]
        if self.rng.random() < 0.3:
            refs.append(self.rng.choice(refs))  # a duplicate: fetched once
        self.current = f"{member.name} reads by ref {refs}"
        variables = {"refs": [{"provider": p.upper(), "id": rid} for p, rid in refs]}
        body = await self.post(member, BY_REF, variables)
        items = (body.get("data") or {}).get("recordingsByRef")
        if not isinstance(items, list) or len(items) != len(refs):
            self.problem(f"recordingsByRef answered {items!r}")
            return
        errors: dict[int, list[dict[str, Any]]] = {}
        for error in body.get("errors", []):
            errors.setdefault(error["path"][1], []).append(error)
        for index, ((provider, rid), item) in enumerate(zip(refs, items, strict=True)):
            self.answer(member, item, errors.get(index, []), provider, rid)
        self.upstream(member)
        self.fetched(member, refs)

    async def list_page(self) -> None:
        member = self.member()
        session = self.sessions[member.name]
        if session is None or self.rng.random() < 0.05:
            providers = None
            if self.rng.random() < 0.6:
                names = ["TWILIO", "SIGNALWIRE", "BIRD"]
                providers = sorted(self.rng.sample(names, self.rng.randint(1, 3)))
            session = Session(providers, self.rng.randint(1, 20))
            self.sessions[member.name] = session
        self.current = (
            f"{member.name} lists {session.providers or 'all'} by {session.first}, "
            f"page {len(session.seen) // session.first + 1}"
        )
        variables = {"first": session.first, "after": session.cursor, "filter": session.filter}
        body = await self.post(member, LIST, variables)
        page = self.page(member, body, session.providers)
        self.upstream(member)
        if page is None:
            self.sessions[member.name] = None
            return
        session.seen += page.items
        self.cursors[member.name].extend((cursor, session.filter) for cursor in page.cursors)
        if page.more:
            session.cursor = page.cursors[-1]
            return
        self.sessions[member.name] = None
        selected = [p.lower() for p in session.providers or ["TWILIO", "SIGNALWIRE", "BIRD"]]
        expected = self.world.listing(member, selected)
        if len(set(session.seen)) != len(session.seen) or set(session.seen) != expected:
            self.problem(
                f"the listing gave {len(session.seen)} items ({len(set(session.seen))} distinct)"
                f", {len(set(session.seen) - expected)} not its own, "
                f"{len(expected - set(session.seen))} of its own missing"
            )

    def page(
        self, member: Member, body: Mapping[str, Any], providers: list[str] | None
    ) -> Page | None:
        """A listing answer's page, its recordings checked (and now cached for the member);
        its only errors name the selected providers the member does not have."""
        connection = (body.get("data") or {}).get("recordings")
        selected = [p.lower() for p in providers or []]
        missing = sorted(p for p in selected if self.world.account(member, p) is None)
        codes = sorted(
            (error["extensions"]["code"], error["extensions"].get("provider", "").lower())
            for error in body.get("errors", [])
        )
        if connection is None or codes != [("PROVIDER_NOT_CONFIGURED", p) for p in missing]:
            self.problem(f"the listing answered {codes} (expected {missing} unconfigured)")
            return None
        items = [self.recording(member, edge["node"]) for edge in connection["edges"]]
        self.warm.update((member.name, provider, rid) for provider, rid in items)
        cursors = [edge["cursor"] for edge in connection["edges"]]
        cursors.append(connection["pageInfo"]["endCursor"])
        return Page(items, cursors, connection["pageInfo"]["hasNextPage"])

    async def resume_edge(self) -> None:
        """A page right after one of the member's own edges (any earlier page)."""
        member = self.member()
        if not self.cursors[member.name]:
            return
        cursor, flt = self.rng.choice(self.cursors[member.name])
        self.current = f"{member.name} resumes one of its own cursors"
        body = await self.post(member, LIST, {"first": 5, "after": cursor, "filter": flt})
        self.page(member, body, None if flt is None else flt["providers"])
        self.upstream(member)

    def refusal(self, body: Mapping[str, Any], what: str) -> None:
        """A cursor refused exactly as a forged one is, before any upstream request."""
        errors = body.get("errors", [])
        seen = [(e["message"], e["extensions"]["code"]) for e in errors]
        if body.get("data") is not None or seen != [(self.refused, "BAD_USER_INPUT")]:
            self.problem(f"{what} answered {repr(body.get('data'))[:120]} with {seen}")
        if self.sandbox.requests:
            self.problem(f"{what} cost {len(self.sandbox.requests)} upstream requests")

    async def foreign_cursor(self) -> None:
        member = self.member()
        others = [m for m in MEMBERS if m != member and self.cursors[m.name]]
        if not others:
            return
        other = self.rng.choice(others)
        cursor, flt = self.rng.choice(self.cursors[other.name])
        self.current = f"{member.name} presents a cursor of {other.name}"
        body = await self.post(member, LIST, {"first": 5, "after": cursor, "filter": flt})
        self.refusal(body, f"a cursor of {other.name}")

    async def forged_cursor(self) -> None:
        member = self.member()
        if not self.cursors[member.name]:
            return
        cursor, flt = self.rng.choice(self.cursors[member.name])
        self.current = f"{member.name} presents one of its own cursors, altered"
        body = await self.post(
            member, LIST, {"first": 5, "after": retampered(cursor), "filter": flt}
        )
        self.refusal(body, "an altered cursor")

    async def mint(self) -> None:
        member = self.member()
        if self.rng.random() < 0.6:
            provider, rid = self.rng.choice(self.ready[member.name])
        else:
            provider, rid = self.draw(member)
        fmt = "MP3" if provider == "bird" else "WAV"
        self.current = f"{member.name} mints a {fmt} link to {provider} {rid}"
        variables = {"provider": provider.upper(), "id": rid, "format": fmt}
        body = await self.post(member, MEDIA, variables)
        item = (body.get("data") or {}).get("recording")
        self.answer(member, item, body.get("errors", []), provider, rid)
        self.upstream(member)
        self.fetched(member, [(provider, rid)])
        if item is None or not self.world.own(member, provider, rid):
            return  # nothing to mint, or already reported
        ready = self.world.records[(provider, rid)].ready
        url = item["mediaUrl"]
        if ready != (item["status"] == "COMPLETED") or ready != (url is not None):
            self.problem(f"status {item['status']} with mediaUrl {url!r}")
        elif url is not None:
            self.links.append(Link(url, member, provider, rid, fmt))

    async def expected_audio(self, link: Link) -> tuple[bytes, int]:
        """The first AUDIO_PREFIX bytes of the recording's audio and its whole size, as the
        sandbox makes it for that recording."""
        key = (link.provider, link.rid, link.format)
        if key not in self.audio:
            record = self.world.records[(link.provider, link.rid)]
            spec = AudioSpec.of(record.id, record.duration, record.channels)
            if link.format == "WAV":
                wav = Wav(spec)
                self.audio[key] = (b"".join(wav.read(0, AUDIO_PREFIX)), wav.size)
            else:
                body = await self.sandbox.mp3_cache.fetch(spec)
                self.audio[key] = (body[:AUDIO_PREFIX], len(body))
        return self.audio[key]

    async def fetch(self) -> None:
        """Anyone holding a link (any tenant, or nobody) gets its minter's recording."""
        if not self.links:
            return
        link = self.rng.choice(self.links)
        holder = self.rng.choice([*MEMBERS, None])
        name = holder.name if holder else "a caller without credentials"
        self.current = f"{name} fetches {link.minter.name}'s link to {link.provider} {link.rid}"
        prefix, size = await self.expected_audio(link)
        headers = {"range": f"bytes=0-{AUDIO_PREFIX - 1}"}
        if holder is not None:
            headers |= bearer(holder.key)
        self.sandbox.requests.clear()
        response = await self.client.get(link.url, headers=headers)
        self.tally.ops += 1
        self.scan(link.minter, str(response.headers))
        self.upstream(link.minter)
        filename = f'inline; filename="{link.provider}-{link.rid}.{link.format.lower()}"'
        if (
            response.status_code != 206
            or response.headers.get("content-disposition") != filename
            or response.headers.get("content-range") != f"bytes 0-{AUDIO_PREFIX - 1}/{size}"
            or response.content != prefix
        ):
            self.problem(f"HTTP {response.status_code} {dict(response.headers)}: not its audio")

    async def forged_link(self) -> None:
        if not self.links:
            return
        link = self.rng.choice(self.links)
        self.current = f"a link of {link.minter.name} to {link.provider} {link.rid}, altered"
        token = token_of(link.url)
        forged = flipped(link.url, token.rindex(".") + 1 + self.rng.randrange(20))
        self.sandbox.requests.clear()
        response = await self.client.get(forged)
        self.tally.ops += 1
        self.scan(link.minter, response.text + str(response.headers))
        code = response.json().get("error", {}).get("code") if response.status_code == 403 else None
        if code != "MEDIA_LINK_INVALID" or self.sandbox.requests:
            self.problem(f"HTTP {response.status_code} {response.text[:200]}")

    async def burst(self) -> None:
        """Every member reads one recording twice, all at once: each tenant still gets its
        own answer and its own fetch (single-flight never merges two tenants)."""
        provider, rid = self.rng.choice(self.everything)
        self.current = f"everyone reads {provider} {rid} at once"
        self.sandbox.requests.clear()
        callers = [member for member in MEMBERS for _ in range(2)]
        variables = {"provider": provider.upper(), "id": rid}
        responses = await asyncio.gather(
            *(
                self.client.post(
                    "/graphql",
                    json={"query": RECORDING, "variables": variables},
                    headers=bearer(member.key),
                )
                for member in callers
            )
        )
        self.tally.ops += len(responses)
        for member, response in zip(callers, responses, strict=True):
            self.scan(member, response.text)
            body = response.json()
            item = (body.get("data") or {}).get("recording")
            self.answer(member, item, body.get("errors", []), provider, rid)
        cold = [
            m
            for m in MEMBERS
            if self.world.account(m, provider) is not None
            and (m.name, provider, rid) not in self.warm
        ]
        fetches = upstream_count(self.sandbox, rid)
        if not len(cold) <= fetches <= 2 * len(cold) or fetches != len(self.sandbox.requests):
            self.problem(f"{fetches} fetches for {len(cold)} tenants without a cache entry")
        self.upstream(MEMBERS[0], allowed=MEMBERS[1:])
        for member in MEMBERS:
            if self.world.account(member, provider) is not None:
                self.warm.add((member.name, provider, rid))

    # -- the run -----------------------------------------------------------------------

    async def prepare(self) -> None:
        """What the checks compare with: the NOT_FOUND message of an id that exists nowhere,
        and the refusal of a forged cursor."""
        for provider in ("twilio", "signalwire", "bird"):
            rid = self.nowhere(provider)
            body = await ask(self.client, ALPHA, RECORDING, provider=provider.upper(), id=rid)
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "NOT_FOUND", body
            self.not_found[provider] = error["message"].replace(rid, "<id>")
        page = await ask(self.client, ALPHA, LIST, first=1)
        forged = retampered(page["data"]["recordings"]["pageInfo"]["endCursor"])
        body = await ask(self.client, ALPHA, LIST, first=1, after=forged)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        self.refused = error["message"]
        # The scan finds an account id where answers carry it: the one this answer is of.
        own = await ask(self.client, ALPHA, LIST, first=3)
        assert any(value in str(own) for _, value in self.never_told[BRAVO.name]), "blind scan"
        self.sandbox.requests.clear()

    async def run(self, ops: int) -> Tally:
        await self.prepare()
        weights = [weight for _, _, weight in self.kinds]
        while self.tally.ops < ops:
            self.step += 1
            name, operation, _ = self.rng.choices(self.kinds, weights)[0]
            self.tally.kinds[name] += 1
            await operation()
        return self.tally


async def test_random_operations_never_leak(
    client: httpx.AsyncClient,
    sandbox: Sandbox,
    backend: Backend,
    record_property: Callable[[str, object], None],
) -> None:
    sandbox.mp3_cache.capacity = 1024  # each recording's MP3 encoded once, not once per fetch
    started = time.perf_counter()
    tally = await Run(client, sandbox, random.Random(SEED), backend.name).run(OPS_PER_BACKEND)
    seconds = time.perf_counter() - started
    record_property("seed", SEED)
    record_property("ops", tally.ops)
    record_property("seconds", round(seconds, 1))
    print(
        f"isolation seed={SEED} {backend.name}: {tally.ops} ops in {seconds:.1f} s, {tally.kinds}"
    )
    assert tally.ops >= OPS_PER_BACKEND
    assert len(tally.leaks) == 0, f"{len(tally.leaks)} leaks:\n" + "\n".join(tally.leaks[:10])
    assert tally.problems == [], f"{len(tally.problems)} problems:\n" + "\n".join(
        tally.problems[:10]
    )
    # Each kind of operation ran, and did what it is there for.
    assert min(tally.kinds.values()) >= 20 and len(tally.kinds) == 10, tally.kinds
