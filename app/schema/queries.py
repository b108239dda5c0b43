"""The Query root."""

from __future__ import annotations

import asyncio
from typing import Annotated

import strawberry

from app import models
from app.cache import Fresh
from app.errors import BadUserInputError
from app.models import Provider
from app.schema.connection import (
    DEFAULT_PAGE_SIZE,
    RecordingConnection,
    RecordingFilter,
    resolve,
)
from app.schema.context import Context
from app.schema.scopes import ReadRecordings
from app.schema.stats import HELP as STATS_HELP
from app.schema.stats import RecordingStatsRow
from app.schema.stats import resolve as resolve_stats
from app.schema.types import Recording
from app.stats.aggregate import Dimension


@strawberry.input(description="Names one recording: a provider and the provider's own id.")
class RecordingRefInput:
    provider: Provider
    id: strawberry.ID

    def to_model(self) -> models.RecordingRef:
        return models.RecordingRef(self.provider, str(self.id))


@strawberry.type
class Query:
    @strawberry.field(
        description="One recording by provider and the provider's own id; null if not found.",
        permission_classes=[ReadRecordings],
    )
    async def recording(
        self, info: strawberry.Info[Context, None], provider: Provider, id: strawberry.ID
    ) -> Recording | None:
        found = await info.context.loaders.recording.load(models.RecordingRef(provider, str(id)))
        return Recording.from_model(info.context.served(found, info.path.as_list()))

    @strawberry.field(
        description=(
            "Many recordings at once, in the order of refs; duplicates are fetched once and "
            "providers are queried concurrently. A ref that fails is null at its index, with "
            "an error whose path ends in that index."
        ),
        permission_classes=[ReadRecordings],
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
        path = info.path.as_list()
        return [
            _item(info.context.served(result, [*path, index]))
            if isinstance(result, Fresh)
            else _item(result)
            for index, result in enumerate(found)
        ]

    @strawberry.field(
        description=(
            "Recordings of every selected provider merged newest first (createdAt, then "
            "provider, then id), filtered exactly, `first` at a time (null means 20; at most "
            "GATEWAY_MAX_PAGE_SIZE, default 100). A provider that fails adds an error naming "
            "it while the others' recordings are still returned; the end cursor retries it."
        ),
        permission_classes=[ReadRecordings],
    )
    async def recordings(
        self,
        info: strawberry.Info[Context, None],
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        filter_: Annotated[RecordingFilter | None, strawberry.argument(name="filter")] = None,
    ) -> RecordingConnection:
        size = DEFAULT_PAGE_SIZE if first is None else first
        return await resolve(info, size, after, filter_)

    @strawberry.field(description=STATS_HELP, permission_classes=[ReadRecordings])
    async def recording_stats(
        self,
        info: strawberry.Info[Context, None],
        filter_: Annotated[RecordingFilter | None, strawberry.argument(name="filter")] = None,
        group_by: list[Dimension] = [],  # noqa: B006 (GraphQL's default; never mutated)
        time_zone: str = "UTC",
    ) -> list[RecordingStatsRow]:
        return await resolve_stats(info, filter_, group_by, time_zone)


def _item(result: models.Recording | BaseException) -> Recording:
    """A list item; graphql-core raises an Exception found in a list at that item's path."""
    if isinstance(result, models.Recording):
        return Recording.from_model(result)
    if not isinstance(result, Exception):  # cancellation and the like are not field errors
        raise result
    return result  # type: ignore[return-value]
