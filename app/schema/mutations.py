"""The Mutation root: each feature's mutations, as one type."""

from __future__ import annotations

import strawberry

from app.schema.transcriptions import TranscriptionMutations


@strawberry.type
class Mutation(TranscriptionMutations):
    pass
