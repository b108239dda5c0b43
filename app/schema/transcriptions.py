"""Transcription mutations: ``requestTranscription``.

(The ``Transcription`` type and ``Recording.transcriptions`` are in ``app.schema.types``,
with the other output types: they must exist before any root type names the model's enums.)

``requestTranscription`` needs the ``transcriptions:request`` scope (not granted by default:
a transcription is a write the provider charges for). Its answer is never cached: it says
``no-store``, and the response cache keeps nothing it says so of.
"""

from __future__ import annotations

import strawberry

from app import transcriptions
from app.models import Provider
from app.schema.context import Context
from app.schema.scopes import RequestTranscriptions
from app.schema.types import Transcription


@strawberry.type
class TranscriptionMutations:
    @strawberry.mutation(
        description=(
            "Ask the provider to transcribe a recording (scope transcriptions:request; the "
            "provider charges for it). Bird: the new transcription, QUEUED. Twilio and "
            "SignalWire cannot transcribe an existing recording: null with "
            "UNSUPPORTED_BY_PROVIDER. `locale` is a BCP 47 tag (else BAD_USER_INPUT, before "
            "any provider call). The recording's cached transcriptions are dropped."
        ),
        permission_classes=[RequestTranscriptions],
    )
    async def request_transcription(
        self,
        info: strawberry.Info[Context, None],
        provider: Provider,
        id: strawberry.ID,
        locale: str = "en-US",
    ) -> Transcription | None:
        info.context.freshness.no_store("a mutation")
        found = await transcriptions.request(info.context.recordings, provider, str(id), locale)
        return Transcription.from_model(found)
