"""A stand-in for the S3 bucket behind Bird's presigned media links.

Links look like S3 SigV4 query-string links; the signature is an HMAC over the object path, the
signing time and the lifetime, so a tampered or expired link is refused as S3 refuses it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.sandbox.audio import AudioSpec
from app.sandbox.errors import s3_error
from app.sandbox.media import mp3_response
from app.sandbox.state import Sandbox
from app.sandbox.web import Urls

BUCKET = "voice-recordings"
REGION = "eu-west-1"
ACCESS_KEY_ID = "ASIASANDBOX0000BIRD"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
TWO_MECHANISMS = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
    "string parameter or the Authorization header should be specified"
)

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


def object_path(workspace: str, recording_id: str) -> str:
    """The route path of a recording's MP3 object."""
    return f"/_s3/{BUCKET}/{workspace}/{recording_id}.mp3"


class Presigner:
    """Mints and checks the presigned links of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        secret = f"sandbox-s3:{sandbox.config.bird_access_key}".encode()
        self._key = hashlib.sha256(secret).digest()

    def signature(self, path: str, amz_date: str, expires: str) -> str:
        message = f"GET\n{path}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, urls: Urls, workspace: str, recording_id: str) -> str:
        """A fresh link to the MP3, valid `config.presign_ttl` seconds from now."""
        config = self.sandbox.config
        now = self.sandbox.now().astimezone(UTC)
        path = object_path(workspace, recording_id)
        amz_date, expires = now.strftime(AMZ_DATE), str(config.presign_ttl)
        query = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", f"{ACCESS_KEY_ID}/{now:%Y%m%d}/{REGION}/s3/aws4_request"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", expires),
            ("X-Amz-SignedHeaders", "host"),
            ("x-id", "GetObject"),
            ("X-Amz-Signature", self.signature(path, amz_date, expires)),
        ]
        origin = config.s3_base_url or f"{urls.origin}{urls.root}"
        return f"{origin}{path}?{urlencode(query)}"

    def refusal(self, request: Request, path: str) -> Response | None:
        """The S3 error for a request that may not read the object, or None."""
        params = request.query_params
        if "authorization" in request.headers:
            if "X-Amz-Algorithm" in params:
                return s3_error(
                    400,
                    code="InvalidArgument",
                    message=TWO_MECHANISMS,
                    ArgumentName="Authorization",
                )
            return s3_error(400, code="InvalidArgument", message="Unsupported Authorization Type")
        amz_date, expires = params.get("X-Amz-Date", ""), params.get("X-Amz-Expires", "")
        given = params.get("X-Amz-Signature")
        if given is None or params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            return s3_error(403)
        if not hmac.compare_digest(given, self.signature(path, amz_date, expires)):
            return s3_error(403, code="SignatureDoesNotMatch", message=SIGNATURE_MISMATCH)
        return self.expired(amz_date, expires)

    def expired(self, amz_date: str, expires: str) -> Response | None:
        try:
            signed = datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=UTC)
            deadline = signed + timedelta(seconds=int(expires))
        except ValueError:
            return s3_error(403)
        now = self.sandbox.now().astimezone(UTC)
        if now <= deadline:
            return None
        return s3_error(
            403,
            message="Request has expired",
            **{"X-Amz-Expires": expires},
            Expires=deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


class S3Bucket:
    """`GET /_s3/voice-recordings/{workspace}/{id}.mp3?X-Amz-...`: the MP3, with Range."""

    def __init__(self, sandbox: Sandbox, presigner: Presigner) -> None:
        self.sandbox = sandbox
        self.presigner = presigner

    def routes(self) -> list[Route]:
        return [Route(f"/_s3/{BUCKET}/{{workspace}}/{{name}}", self.get_object, methods=["GET"])]

    async def get_object(self, request: Request) -> Response:
        workspace, name = request.path_params["workspace"], request.path_params["name"]
        refused = self.presigner.refusal(request, f"/_s3/{BUCKET}/{workspace}/{name}")
        if refused is not None:
            return refused
        recording_id = name.removesuffix(".mp3")
        record = self.sandbox.dataset.get("bird", recording_id, workspace)
        if record is None or not record.ready:
            return s3_error(404, Key=f"{workspace}/{name}")
        spec = AudioSpec.of(record.id, record.duration, record.channels)
        headers = {
            "etag": f'"{hashlib.md5(record.id.encode(), usedforsecurity=False).hexdigest()}"',
            "last-modified": format_datetime(record.updated.astimezone(UTC), usegmt=True),
        }
        return await mp3_response(
            request,
            spec,
            self.sandbox.mp3_cache,
            honor_range=self.sandbox.config.honor_range,
            headers=headers,
        )
