"""The Query root."""

from __future__ import annotations

import asyncio

import strawberry

from app import models
from app.errors import BadUserInputError
from app.models import Provider
from app.schema.context import Context
from app.schema.types import Recording


@strawberry.input(description="Names one recording: a provider and the provider's own id.")
class RecordingRefInput:
    provider: Provider
    id: strawberry.ID

    def to_model(self) -> models.RecordingRef:
        return models.RecordingRef(self.provider, str(self.id))


@strawberry.type
class Query:
    @strawberry.field(
        description="One recording by provider and the provider's own id; null if not found."
    )
    async def recording(
        self, info: strawberry.Info[Context, None], provider: Provider, id: strawberry.ID
    ) -> Recording | None:
        found = await info.context.loaders.recording.load(models.RecordingRef(provider, str(id)))
        return Recording.from_model(found)

    @strawberry.field(
        description=(
            "Many recordings at once, in the order of refs; duplicates are fetched once and "
            "providers are queried concurrently. A ref that fails is null at its index, with "
            "an error whose path ends in that index."
        )
    )
    async def recordings_by_ref(
        self, info: strawberry.Info[Context, None], refs: list[RecordingRefInput]
    ) -> list[Recording | None]:
        limit = info.context.settings.max_batch
        if len(refs) > limit:
            raise BadUserInputError(f"at most {limit} refs per call, got {len(refs)}")
        loader = info.context.loaders.recording
        found = await asyncio.gather(
            *(loader.load(ref.to_model()) for ref in refs), return_exceptions=True
        )
        return [_item(result) for result in found]


def _item(result: models.Recording | BaseException) -> Recording:
    """A list item; graphql-core raises an Exception found in a list at that item's path."""
    if isinstance(result, models.Recording):
        return Recording.from_model(result)
    if not isinstance(result, Exception):  # cancellation and the like are not field errors
        raise result
    return result  # type: ignore[return-value]
