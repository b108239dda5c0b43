"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.recordings import RecordingService
from app.schema.loaders import Loaders
from app.settings import Settings
from app.signing import Signer


@dataclass
class Context:
    """Built fresh for every request by ``GatewayGraphQL.get_context``."""

    request: Request
    settings: Settings
    recordings: RecordingService
    loaders: Loaders
    signer: Signer
