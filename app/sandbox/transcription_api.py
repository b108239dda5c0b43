"""The providers' transcription endpoints, over ``Sandbox.transcriptions``.

- Twilio and SignalWire: ``GET .../Recordings/{sid}/Transcriptions.json``, paged like their
  recordings (``PageSize`` 1..1000, default 50; ``PageToken`` ``PA<sid>`` after that
  transcription, 400 code 21481 when it names none), 404 when the recording is not the
  account's.
- Bird: ``GET|POST /workspaces/{ws}/recordings/{id}/transcriptions`` (the list: ``limit``
  1..99, default 10, ``pageToken``/``nextPageToken``; the POST: ``{"locale"}`` from Bird's
  SupportedLocales, 202 with the new transcription), ``GET /workspaces/{ws}/transcriptions``
  (the workspace's), ``GET /workspaces/{ws}/transcriptions/{id}`` and ``{id}.txt`` (the text,
  404 until it is available). Bad input is 422 InvalidPayload with ``details``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.sandbox.bird import BirdApi, Invalid
from app.sandbox.compat import CompatApi, rfc2822
from app.sandbox.errors import bird_error, compat_error
from app.sandbox.render_bird import rfc3339
from app.sandbox.signalwire import LAML_PREFIX
from app.sandbox.transcriptions import COMPLETES_AFTER, SandboxTranscription, new_id
from app.sandbox.web import Urls, is_uuid

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
BIRD_DEFAULT_LIMIT = 10
BIRD_MAX_LIMIT = 99
BIRD_TOKEN_PREFIX = "t1:"
#: Bird's SupportedLocales (its Transcriptions API's OpenAPI enum).
BIRD_LOCALES = frozenset(
    "ar-AE ar-SA cmn-CN cy-GB da-DK de-CH de-DE el-GR en-AU en-GB en-GB-WLS en-IE en-IN en-NZ "
    "en-US en-ZA es-ES es-MX es-US fr-CA fr-FR he-IL hi-IN id-ID is-IS it-IT ja-JP ko-KR ms-MY "
    "nb-NO nl-NL pl-PL pt-BR pt-PT ro-RO ru-RU sv-SE ta-IN te-IN th-TH tr-TR vi-VN zh-CN zh-HK "
    "zh-TW arb af-ZA bn-IN ca-ES cmn-TW cs-CZ fi-FI fil-PH gu-IN hu-HU kn-IN lt-LT lv-LV ml-IN "
    "mr-IN pa-IN sk-SK sr-RS uk-UA yue-HK no-NO".split()
)
BIRD_BODY_FIELDS = frozenset({"locale", "messageId", "conversationId", "recordingId"})


@dataclass(frozen=True, slots=True)
class Slice:
    """One page of transcriptions and whether more follow."""

    items: list[SandboxTranscription]
    more: bool


def after(items: Sequence[SandboxTranscription], last_id: str | None, size: int) -> Slice | None:
    """The ``size`` items after the one named ``last_id`` (all from the start when None);
    None when ``last_id`` names none of them."""
    start = 0
    if last_id is not None:
        ids = [t.id for t in items]
        if last_id not in ids:
            return None
        start = ids.index(last_id) + 1
    return Slice(list(items[start : start + size]), start + size < len(items))


class CompatTranscriptions:
    """Twilio's or SignalWire's ``Recordings/{sid}/Transcriptions.json``."""

    def __init__(self, api: CompatApi) -> None:
        self.api = api
        self.provider = api.dialect.provider
        self.render: Callable[[SandboxTranscription, Urls], dict[str, object]] = (
            render_twilio if self.provider == "twilio" else render_signalwire
        )

    def routes(self) -> list[Route]:
        base = self.api.dialect.account_path("{account}")
        path = f"{base}/Recordings/{{sid}}/Transcriptions.json"
        return [Route(path, self.list_transcriptions, methods=["GET"])]

    async def list_transcriptions(self, request: Request) -> Response:
        denied = self.api.authorize(request)
        if denied is not None:
            return denied
        record = self.api.find(request, request.path_params["sid"])
        if record is None:
            return self.api.not_found(request)
        params = request.query_params
        size = _bounded(params.get("PageSize"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        number = _bounded(params.get("Page"), 0, None, low=0)
        if size is None or number is None:
            return compat_error(self.provider, 400, message="Invalid paging parameter")
        sandbox = self.api.sandbox
        items = sandbox.transcriptions.of(self.provider, record.id, sandbox.now())
        token = params.get("PageToken")
        last = token[2:] if token and token.startswith("PA") else None
        page = after(items, last, size) if not token or last else None
        if page is None:
            message = f"Invalid PageToken: {token}"
            return compat_error(self.provider, 400, code=21481, message=message)
        return JSONResponse(self.envelope(request, page, size, number, token))

    def envelope(
        self, request: Request, page: Slice, size: int, number: int, token: str | None
    ) -> dict[str, object]:
        urls = Urls.of(request)
        account, sid = request.path_params["account"], request.path_params["sid"]
        base = f"{self.api.dialect.account_path(account)}/Recordings/{sid}/Transcriptions.json"

        def link(at: int, page_token: str | None) -> str:
            query = [("PageSize", str(size)), ("Page", str(at))]
            query += [("PageToken", page_token)] if page_token else []
            return urls.relative(f"{base}?{urlencode(query)}")

        next_uri = link(number + 1, f"PA{page.items[-1].id}") if page.more else None
        body: dict[str, object] = {
            "transcriptions": [self.render(t, urls) for t in page.items],
            "page": number,
            "page_size": size,
            "uri": link(number, token),
            "first_page_uri": link(0, None),
            "next_page_uri": next_uri,
            "previous_page_uri": None if number == 0 else link(0, None),
        }
        if self.api.dialect.envelope_has_start_end:
            body["start"] = number * size
            body["end"] = number * size + max(len(page.items) - 1, 0)
        return body


class BirdTranscriptions:
    """Bird's Transcriptions API."""

    def __init__(self, api: BirdApi) -> None:
        self.api = api
        self.sandbox = api.sandbox

    def routes(self) -> list[Route]:
        of_recording = "/workspaces/{workspace}/recordings/{recording}/transcriptions"
        workspace = "/workspaces/{workspace}/transcriptions"
        return [
            Route(of_recording, self.of_recording, methods=["GET", "POST"]),
            Route(workspace, self.of_workspace, methods=["GET"]),
            Route(workspace + "/{name}", self.item, methods=["GET"]),
        ]

    async def of_recording(self, request: Request) -> Response:
        denied = self.api.authorize(request)
        if denied is not None:
            return denied
        recording_id: str = request.path_params["recording"]
        if not is_uuid(recording_id):
            return bird_error(422, details={"recordingId": ["must be a valid UUID"]})
        workspace: str = request.path_params["workspace"]
        record = self.sandbox.dataset.get("bird", recording_id, workspace)
        if record is None:
            return bird_error(404, message="recording not found")
        if request.method == "POST":
            return await self.create(request, record.id, record.ready, record.channels == 2)
        items = self.sandbox.transcriptions.of("bird", record.id, self.sandbox.now())
        return self.page(request, items)

    async def of_workspace(self, request: Request) -> Response:
        denied = self.api.authorize(request)
        if denied is not None:
            return denied
        workspace: str = request.path_params["workspace"]
        items = self.sandbox.transcriptions.of_account("bird", workspace, self.sandbox.now())
        return self.page(request, items)

    def page(self, request: Request, items: list[SandboxTranscription]) -> Response:
        try:
            limit = _bird_limit(request.query_params.get("limit"))
            token = request.query_params.get("pageToken") or None
            page = after(items, None if token is None else _decode(token), limit)
            if page is None:
                raise Invalid("pageToken", "invalid page token")
        except Invalid as exc:
            return bird_error(422, details=exc.details)
        body: dict[str, object] = {"results": [render_bird(t) for t in page.items]}
        if page.more:
            body["nextPageToken"] = _encode(page.items[-1].id)
        return JSONResponse(body)

    async def create(
        self, request: Request, recording_id: str, ready: bool, stereo: bool
    ) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return bird_error(400, message="the body is not JSON")
        problems = _payload_problems(payload)
        if not problems and not ready:
            problems = {"recordingId": ["the recording is not available yet"]}
        if problems:
            return bird_error(422, details=problems)
        now = self.sandbox.now()
        workspace: str = request.path_params["workspace"]
        existing = len(self.sandbox.transcriptions.of("bird", recording_id, now))
        record = self.sandbox.dataset.get("bird", recording_id)
        created = self.sandbox.transcriptions.add(
            SandboxTranscription(
                provider="bird",
                id=new_id("bird", f"{recording_id}:requested:{existing}:{now.isoformat()}"),
                recording_id=recording_id,
                account=workspace,
                status="accepted",
                created=now,
                updated=now,
                text=None,
                locale=payload["locale"],
                duration=record.duration if record is not None else 0,
                stereo=stereo,
                completes_at=now + COMPLETES_AFTER,
            )
        )
        return JSONResponse(render_bird(created), status_code=202)

    async def item(self, request: Request) -> Response:
        denied = self.api.authorize(request)
        if denied is not None:
            return denied
        name: str = request.path_params["name"]
        text = name.endswith(".txt")
        transcription_id = name.removesuffix(".txt")
        if not is_uuid(transcription_id):
            return bird_error(422, details={"transcriptionId": ["must be a valid UUID"]})
        found = self.sandbox.transcriptions.get("bird", transcription_id, self.sandbox.now())
        if found is None or found.account != request.path_params["workspace"]:
            return bird_error(404, message="transcription not found")
        if not text:
            return JSONResponse(render_bird(found))
        if found.text is None:
            return bird_error(404, message="transcription is not available")
        return PlainTextResponse(found.text)


def _payload_problems(payload: object) -> dict[str, list[str]]:
    if not isinstance(payload, dict):
        return {"body": ["must be an object"]}
    problems = {key: ["unknown field"] for key in payload if key not in BIRD_BODY_FIELDS}
    if payload.get("locale") not in BIRD_LOCALES:
        problems["locale"] = ["must be one of the supported locales"]
    return problems


def _bounded(raw: str | None, default: int, high: int | None, *, low: int = 1) -> int | None:
    """``raw`` as an int within ``low``..``high``, ``default`` when absent, None when bad."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= low and (high is None or value <= high) else None


def _bird_limit(raw: str | None) -> int:
    limit = _bounded(raw, BIRD_DEFAULT_LIMIT, BIRD_MAX_LIMIT)
    if limit is None:
        raise Invalid("limit", f"must be between 1 and {BIRD_MAX_LIMIT}")
    return limit


def _encode(transcription_id: str) -> str:
    raw = f"{BIRD_TOKEN_PREFIX}{transcription_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith(BIRD_TOKEN_PREFIX):
        raise Invalid("pageToken", "invalid page token")
    return raw.removeprefix(BIRD_TOKEN_PREFIX)


# --- each provider's JSON ----------------------------------------------------------------------


def render_twilio(t: SandboxTranscription, urls: Urls) -> dict[str, object]:
    """An item of ``GET /2010-04-01/Accounts/{AC}/Recordings/{RE}/Transcriptions.json``
    (``api.v2010.account.recording.recording_transcription``; ``price`` as a string, as the
    spec's own example and the recordings' price)."""
    price = t.price
    return {
        "account_sid": t.account,
        "api_version": "2010-04-01",
        "date_created": rfc2822(t.created),
        "date_updated": rfc2822(t.updated),
        "duration": str(t.duration),
        "price": None if price is None else f"{price:.5f}",
        "price_unit": "USD",
        "recording_sid": t.recording_id,
        "sid": t.id,
        "status": t.status,
        "transcription_text": t.text,
        "type": "fast",
        "uri": urls.relative(f"/2010-04-01/Accounts/{t.account}/Transcriptions/{t.id}.json"),
    }


def render_signalwire(t: SandboxTranscription, urls: Urls) -> dict[str, object]:
    """An item of SignalWire's ``Transcription`` schema (``duration`` an int, ``type`` "")."""
    price = t.price
    path = f"{LAML_PREFIX}/2010-04-01/Accounts/{t.account}/Transcriptions/{t.id}.json"
    return {
        "sid": t.id,
        "account_sid": t.account,
        "api_version": "2010-04-01",
        "recording_sid": t.recording_id,
        "date_created": rfc2822(t.created),
        "date_updated": rfc2822(t.updated),
        "duration": t.duration,
        "price": None if price is None else f"{price:.5f}",
        "price_unit": "USD",
        "status": t.status,
        "transcription_text": t.text,
        "type": "",
        "uri": urls.relative(path),
    }


def render_bird(t: SandboxTranscription) -> dict[str, object]:
    """Bird's ``Transcription`` schema, its required fields (``url``/``summary`` left out,
    as in Bird's own list example)."""
    return {
        "id": t.id,
        "recordingId": t.recording_id,
        "status": t.status,
        "stereo": t.stereo,
        "locale": t.locale,
        "createdAt": rfc3339(t.created),
        "updatedAt": rfc3339(t.updated),
    }
