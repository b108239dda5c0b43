"""Bird's Recordings API: `/workspaces/{ws}/recordings[/{id}[.mp3]]`, AccessKey auth, camelCase."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.sandbox.data import SandboxRecording
from app.sandbox.errors import bird_error
from app.sandbox.paging import Window, after, at_offset
from app.sandbox.render_bird import render_bird, source_id
from app.sandbox.s3 import Presigner
from app.sandbox.state import Sandbox
from app.sandbox.web import Urls, is_uuid

Predicate = Callable[[SandboxRecording], bool]
MAX_LIMIT = 99
DEFAULT_LIMIT = 20
TOKEN_PREFIX = "r1:"


class Invalid(Exception):
    """A request Bird answers with 422 InvalidPayload; carries `{field: [messages]}`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.details = {field: [message]}


def encode_token(recording_id: str) -> str:
    """An opaque page token naming the last record of a page."""
    return base64.urlsafe_b64encode(f"{TOKEN_PREFIX}{recording_id}".encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The record id inside a page token; Invalid when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith(TOKEN_PREFIX):
        raise Invalid("pageToken", "invalid page token")
    return raw.removeprefix(TOKEN_PREFIX)


class BirdApi:
    """Routes of the Bird sandbox over the shared `Sandbox`."""

    def __init__(self, sandbox: Sandbox, presigner: Presigner) -> None:
        self.sandbox = sandbox
        self.presigner = presigner

    def routes(self) -> list[Route]:
        base = "/workspaces/{workspace}/recordings"
        return [
            Route(base, self.list_recordings, methods=["GET"]),
            Route(base + "/{name}", self.item, methods=["GET", "DELETE"]),
        ]

    def authorize(self, request: Request) -> Response | None:
        """401 unless the key is some workspace's, 403 unless that workspace is the path's."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        accounts = self.sandbox.accounts("bird")
        owner = next((a for a in accounts if a.secret == key.strip()), None)
        if scheme.lower() != "accesskey" or owner is None:
            return bird_error(401)
        if request.path_params["workspace"] != owner.account:
            return bird_error(403)
        return None

    def render(self, record: SandboxRecording, urls: Urls) -> dict[str, object]:
        presigned = None
        if record.ready:
            presigned = self.presigner.url(urls, record.account, record.id)
        return render_bird(record, urls, presigned)

    async def item(self, request: Request) -> Response:
        denied = self.authorize(request)
        if denied is not None:
            return denied
        name: str = request.path_params["name"]
        media = request.method != "DELETE" and name.endswith(".mp3")
        recording_id = name.removesuffix(".mp3") if media else name
        if not is_uuid(recording_id):
            details = {"recordingId": ["must be a valid UUID"]}
            return bird_error(422, details=details)
        workspace: str = request.path_params["workspace"]
        record = self.sandbox.dataset.get("bird", recording_id, workspace)
        if record is None or (media and not record.ready):
            return bird_error(404, message="recording not found")
        if request.method == "DELETE":
            self.sandbox.dataset.delete("bird", recording_id)
            return Response(status_code=204)
        urls = Urls.of(request)
        if media:
            location = self.presigner.url(urls, record.account, record.id)
            return Response(status_code=307, headers={"location": location})
        return JSONResponse(self.render(record, urls))

    async def list_recordings(self, request: Request) -> Response:
        denied = self.authorize(request)
        if denied is not None:
            return denied
        params = request.query_params
        workspace: str = request.path_params["workspace"]
        dataset = self.sandbox.dataset
        try:
            limit = parse_limit(params.get("limit"))
            tests = filters(params)
            token = params.get("pageToken") or None
            position = None
            if token is not None:
                position = dataset.position("bird", decode_token(token), workspace)
                if position is None:
                    raise Invalid("pageToken", "invalid page token")
        except Invalid as exc:
            return bird_error(422, details=exc.details)
        listing = dataset.listing("bird", workspace)
        records = [r for r in listing if all(t(r) for t in tests)]
        window = (
            at_offset(records, 0, limit) if position is None else after(records, position, limit)
        )
        return JSONResponse(self.envelope(request, window))

    def envelope(self, request: Request, window: Window) -> dict[str, object]:
        urls = Urls.of(request)
        body: dict[str, object] = {"results": [self.render(r, urls) for r in window.items]}
        if window.items and window.more_after:
            body["nextPageToken"] = encode_token(window.items[-1].id)
        return body


def parse_limit(raw: str | None) -> int:
    """`limit`: 1..99, default 20."""
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise Invalid("limit", "must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def parse_instant(field: str, raw: str) -> datetime:
    """An RFC 3339 timestamp with a zone."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(field, "must be an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise Invalid(field, "must include a time zone")
    return moment


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def filters(params: QueryParams) -> list[Predicate]:
    """Predicates for sourceId, channelId, direction, startAt, endAt, from and to."""
    tests: list[Predicate] = []
    if (source := params.get("sourceId")) is not None:
        tests.append(lambda r: source_id(r) == source)
    if (channel := params.get("channelId")) is not None:
        tests.append(lambda r: r.channel_id == channel)
    if (direction := params.get("direction")) is not None:
        if direction not in {"incoming", "outgoing"}:
            raise Invalid("direction", "must be one of incoming, outgoing")
        tests.append(lambda r: r.direction == direction)
    if (start_raw := params.get("startAt")) is not None:
        start = parse_instant("startAt", start_raw)
        tests.append(lambda r: r.created >= start)
    if (end_raw := params.get("endAt")) is not None:
        end = parse_instant("endAt", end_raw)
        tests.append(lambda r: r.created < end)
    if (caller := params.get("from")) is not None:
        tests.append(lambda r: digits(r.originator) == digits(caller))
    if (callee := params.get("to")) is not None:
        tests.append(lambda r: digits(r.receiver) == digits(callee))
    return tests
