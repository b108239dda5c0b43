"""The adapters' transcription calls, against the sandbox: the wire, paging, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette

from app.errors import (
    MalformedProviderResponseError,
    ProviderAuthError,
    ProviderUnavailableError,
    RecordingNotFoundError,
    UnsupportedByProviderError,
)
from app.models import Provider, TranscriptionStatus
from app.providers import RecordingProvider, build_providers
from app.providers.bird import BirdProvider
from app.providers.laml import TRANSCRIPTION_PAGE_SIZE
from app.providers.protocol import TRANSCRIPTION_CALLS
from app.providers.twilio import TwilioProvider
from app.sandbox import Sandbox
from app.sandbox.transcriptions import COMPLETES_AFTER, DONE, SandboxTranscription, new_id
from app.settings import Settings
from app.upstream.client import Upstream
from tests.providers.conftest import load

pytestmark = pytest.mark.anyio


@pytest.fixture
async def adapters(
    settings: Settings, sandbox_app: Starlette
) -> AsyncIterator[dict[Provider, RecordingProvider]]:
    upstream = Upstream(httpx.ASGITransport(app=sandbox_app), timeout=5.0)
    tenant = next(iter(settings.tenant_settings().values()))
    yield build_providers(tenant, upstream)
    await upstream.aclose()


def transcribed(sandbox: Sandbox, provider: str) -> str:
    return next(
        r.id
        for r in sandbox.dataset.listing(provider)
        if sandbox.transcriptions.of(provider, r.id, sandbox.now())
    )


def add_many(sandbox: Sandbox, provider: str, rid: str, count: int) -> None:
    record = sandbox.dataset.get(provider, rid)
    assert record is not None
    for index in range(count):
        created = record.created - timedelta(days=400, minutes=index)
        sandbox.transcriptions.add(
            SandboxTranscription(
                provider=provider,
                id=new_id(provider, f"many:{rid}:{index}"),
                recording_id=rid,
                account=record.account,
                status=DONE[provider],
                created=created,
                updated=created,
                text=f"number {index}",
            )
        )


@pytest.mark.parametrize("provider", list(Provider))
async def test_a_recordings_transcriptions_as_the_provider_keeps_them(
    provider: Provider, adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, provider.value)
    found = await adapters[provider].list_transcriptions(rid)
    kept = sandbox.transcriptions.of(provider.value, rid, sandbox.now())
    assert [t.id for t in found] == [t.id for t in kept]
    for mine, theirs in zip(found, kept, strict=True):
        assert mine.provider is provider and mine.recording_id == rid
        assert mine.provider_status == theirs.status
        assert mine.text == theirs.text
        assert mine.created_at is not None
        assert (mine.status is TranscriptionStatus.COMPLETED) == (
            theirs.status == DONE[provider.value]
        )


async def test_twilio_asks_for_the_recordings_subresource(
    adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, "twilio")
    await adapters[Provider.TWILIO].list_transcriptions(rid)
    (seen,) = sandbox.requests_to("twilio")
    assert seen.method == "GET"
    assert seen.route_path.endswith(f"/Recordings/{rid}/Transcriptions.json")
    assert parse_qs(seen.query) == {"PageSize": [str(TRANSCRIPTION_PAGE_SIZE)]}
    assert seen.headers["authorization"].startswith("Basic ")


async def test_bird_reads_the_list_then_each_available_text(
    adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, "bird")
    found = await adapters[Provider.BIRD].list_transcriptions(rid)
    seen = sandbox.requests_to("bird")
    assert seen[0].route_path.endswith(f"/recordings/{rid}/transcriptions")
    assert parse_qs(seen[0].query) == {"limit": ["99"]}
    ready = [t for t in found if t.status is TranscriptionStatus.COMPLETED]
    texts = sorted(s.route_path for s in seen[1:])
    assert texts == sorted(
        f"/workspaces/{seen[0].route_path.split('/')[2]}/transcriptions/{t.id}.txt" for t in ready
    )
    assert all(t.text for t in ready) and all(
        s.headers["authorization"].startswith("AccessKey") for s in seen
    )


async def test_bird_reads_at_most_the_budget_of_texts(
    adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, "bird")
    add_many(sandbox, "bird", rid, 6)
    found = await adapters[Provider.BIRD].list_transcriptions(rid)
    assert len(sandbox.requests_to("bird")) == TRANSCRIPTION_CALLS
    with_text = [t for t in found if t.text is not None]
    assert len(with_text) == TRANSCRIPTION_CALLS - 1
    newest = sorted(
        (t for t in found if t.status is TranscriptionStatus.COMPLETED),
        key=lambda t: t.created_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    assert with_text == [t for t in found if t in newest[: TRANSCRIPTION_CALLS - 1]]


@pytest.mark.parametrize("provider", [Provider.TWILIO, Provider.SIGNALWIRE])
async def test_pages_are_followed_up_to_the_budget(
    provider: Provider, adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, provider.value)
    add_many(sandbox, provider.value, rid, TRANSCRIPTION_PAGE_SIZE + 10)
    found = await adapters[provider].list_transcriptions(rid)
    kept = sandbox.transcriptions.of(provider.value, rid, sandbox.now())
    assert [t.id for t in found] == [t.id for t in kept]
    later = sandbox.requests_to(provider.value)[1:]
    assert len(later) == 1 and "PageToken=PA" in later[0].query

    add_many(sandbox, provider.value, rid, TRANSCRIPTION_PAGE_SIZE * TRANSCRIPTION_CALLS)
    sandbox.requests.clear()
    bounded = await adapters[provider].list_transcriptions(rid)
    assert len(sandbox.requests_to(provider.value)) == TRANSCRIPTION_CALLS
    assert len(bounded) == TRANSCRIPTION_PAGE_SIZE * TRANSCRIPTION_CALLS


@pytest.mark.parametrize("provider", list(Provider))
async def test_an_unknown_recording_is_not_found(
    provider: Provider, adapters: dict[Provider, RecordingProvider]
) -> None:
    rid = "RE" + "0" * 32 if provider is Provider.TWILIO else "00000000-0000-4000-8000-000000000000"
    with pytest.raises(RecordingNotFoundError):
        await adapters[provider].list_transcriptions(rid)


@pytest.mark.parametrize("provider", list(Provider))
async def test_provider_errors_are_translated(
    provider: Provider, adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, provider.value)
    sandbox.faults.inject(provider.value, 401)
    with pytest.raises(ProviderAuthError):
        await adapters[provider].list_transcriptions(rid)
    sandbox.faults.inject(provider.value, 500)
    with pytest.raises(ProviderUnavailableError):
        await adapters[provider].list_transcriptions(rid)


async def test_a_next_page_elsewhere_is_refused(settings: Settings) -> None:
    page = load(Provider.TWILIO, "transcriptions_page.json")
    page["next_page_uri"] = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls.json"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page)

    adapter = TwilioProvider(
        Upstream(httpx.MockTransport(answer), timeout=5.0),
        api_root="https://api.twilio.test/2010-04-01",
        account="ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        auth=httpx.BasicAuth("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "token"),
    )
    with pytest.raises(MalformedProviderResponseError):
        await adapter.list_transcriptions("REaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")


async def test_the_recorded_twilio_page_reads() -> None:
    page = load(Provider.TWILIO, "transcriptions_page.json")
    adapter = TwilioProvider(
        Upstream(httpx.MockTransport(lambda _: httpx.Response(200, json=page)), timeout=5.0),
        api_root="https://api.twilio.test/2010-04-01",
        account="ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        auth=httpx.BasicAuth("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "token"),
    )
    (found,) = await adapter.list_transcriptions("REaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert found.id == "TRaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert found.status is TranscriptionStatus.IN_PROGRESS
    assert found.text == "THIS IS A TEST" and found.locale is None
    assert found.created_at is not None and found.created_at.year == 2011


async def test_bird_requests_a_transcription_once(
    adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = next(r.id for r in sandbox.dataset.listing("bird") if r.ready)
    created = await adapters[Provider.BIRD].request_transcription(rid, "de-DE")
    assert created.status is TranscriptionStatus.QUEUED and created.provider_status == "accepted"
    assert created.locale == "de-DE" and created.recording_id == rid and created.text is None
    (seen,) = sandbox.requests_to("bird")
    assert seen.method == "POST" and seen.route_path.endswith(f"/recordings/{rid}/transcriptions")
    assert seen.headers["content-type"] == "application/json"
    later = sandbox.now() + COMPLETES_AFTER
    sandbox.clock = lambda: later
    found = await adapters[Provider.BIRD].list_transcriptions(rid)
    mine = next(t for t in found if t.id == created.id)
    assert mine.status is TranscriptionStatus.COMPLETED and mine.text


async def test_bird_posts_carry_the_locale(
    adapters: dict[Provider, RecordingProvider], sandbox: Sandbox, sandbox_app: Starlette
) -> None:
    bodies: list[object] = []
    inner = httpx.ASGITransport(app=sandbox_app)

    async def spy(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return await inner.handle_async_request(request)

    adapter = adapters[Provider.BIRD]
    assert isinstance(adapter, BirdProvider)
    rid = next(r.id for r in sandbox.dataset.listing("bird") if r.ready)
    spied = BirdProvider(
        Upstream(httpx.MockTransport(spy), timeout=5.0),
        base_url=adapter.endpoint,
        workspace_id=adapter.account_id,
        access_key=sandbox.accounts("bird")[0].secret,
    )
    await spied.request_transcription(rid, "en-GB")
    assert bodies == [{"locale": "en-GB"}]


async def test_a_post_is_not_sent_twice_after_a_5xx_but_is_after_a_429(
    adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = next(r.id for r in sandbox.dataset.listing("bird") if r.ready)
    sandbox.faults.inject("bird", 503, times=3)
    with pytest.raises(ProviderUnavailableError):
        await adapters[Provider.BIRD].request_transcription(rid, "en-US")
    assert len(sandbox.requests_to("bird")) == 1
    sandbox.faults.take("bird")
    sandbox.faults.take("bird")
    sandbox.requests.clear()
    sandbox.faults.inject("bird", 429, retry_after=0)
    created = await adapters[Provider.BIRD].request_transcription(rid, "en-US")
    assert created.status is TranscriptionStatus.QUEUED
    assert [s.method for s in sandbox.requests_to("bird")] == ["POST", "POST"]


@pytest.mark.parametrize("provider", [Provider.TWILIO, Provider.SIGNALWIRE])
async def test_laml_cannot_transcribe_an_existing_recording(
    provider: Provider, adapters: dict[Provider, RecordingProvider], sandbox: Sandbox
) -> None:
    rid = transcribed(sandbox, provider.value)
    with pytest.raises(UnsupportedByProviderError):
        await adapters[provider].request_transcription(rid, "en-US")
    assert sandbox.requests == []
