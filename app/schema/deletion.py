"""``deleteRecording``: delete one recording at its provider, for good.

Checks come cheapest first and none costs an upstream request: the caller's scope
(``recordings:delete``, never granted by default: FORBIDDEN), then, as for a query
(``RecordingService``), the id's format (BAD_USER_INPUT) and whether the provider is
configured (PROVIDER_NOT_CONFIGURED). Only then the provider's DELETE, retried as any provider
call on transient failures (``HttpProvider.delete`` reads a retry's 404 right).

Idempotent: a recording the provider says is gone already answers ``alreadyDeleted: true``,
never NOT_FOUND. Once the provider answered, the recording's cache entry becomes NOT_FOUND and
every cached answer holding it is purged (``RecordingCache.forget``), so the next
``recording(...)`` is null with NOT_FOUND, never the old copy; a ``DELETED`` event is published
to the tenant's subscribers when this call deleted it, or when the gateway still held it as
present (its subscribers last heard of it alive), with the recording as the gateway last knew
it (only its provider, id and account if it held none).

Every call that reaches the field, refused or not, writes one audit line (``app.audit``):
tenant, caller (``Principal.caller``), provider, id, request id, outcome (``deleted``,
``already_deleted``, ``forbidden``, or ``failed`` with the error's code: the deletion was not
confirmed, and may still have happened when the provider was unreachable or the request was
cut short, ``CANCELLED``; the mutation is idempotent, so sending it again settles it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import strawberry

from app.access.authenticate import Principal
from app.audit import audit
from app.errors import GatewayError
from app.events import RecordingEvent, RecordingEventType
from app.logs import request_id
from app.models import Provider, Recording, RecordingStatus
from app.recordings import Deletion
from app.schema.context import Context
from app.schema.scopes import DeleteRecordings

logger = logging.getLogger(__name__)


@strawberry.type(
    description=(
        "What deleteRecording did. Exactly one of deleted and alreadyDeleted is true: either "
        "way the recording is gone from its provider."
    )
)
class DeleteRecordingResult:
    provider: Provider
    id: strawberry.ID
    deleted: bool = strawberry.field(description="This call deleted the recording.")
    already_deleted: bool = strawberry.field(
        description="The provider had no such recording any more (deleted before, by anyone)."
    )


class AuditedDeleteRecordings(DeleteRecordings):
    """``recordings:delete``, with a refusal written to the audit log too."""

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        allowed = super().has_permission(source, info, **kwargs)
        if not allowed:
            _audit(info, kwargs.get("provider"), kwargs.get("id"), "forbidden")
        return allowed


@strawberry.type
class DeletionMutations:
    @strawberry.mutation(
        description=(
            "Delete a recording at its provider (its media and metadata; Twilio keeps the "
            "metadata 40 days with status deleted). Needs the recordings:delete scope. "
            "Idempotent: a recording already gone answers alreadyDeleted: true, not NOT_FOUND. "
            "The gateway then forgets it (the next recording(...) is null with NOT_FOUND), "
            "publishes a DELETED event and writes an audit line."
        ),
        permission_classes=[AuditedDeleteRecordings],
    )
    async def delete_recording(
        self, info: strawberry.Info[Context, None], provider: Provider, id: strawberry.ID
    ) -> DeleteRecordingResult:
        recording_id = str(id)
        try:
            deletion = await info.context.recordings.delete(provider, recording_id)
        except BaseException as exc:  # a request cut short too: the DELETE may have run
            _audit(info, provider, recording_id, "failed", error=_code(exc))
            raise
        _audit(info, provider, recording_id, "deleted" if deletion.deleted else "already_deleted")
        await _announce(info.context, provider, recording_id, deletion)
        return DeleteRecordingResult(
            provider=provider,
            id=strawberry.ID(recording_id),
            deleted=deletion.deleted,
            already_deleted=not deletion.deleted,
        )


async def _announce(context: Context, provider: Provider, rid: str, deletion: Deletion) -> None:
    """Publish ``DELETED`` if subscribers may believe the recording still exists. The
    deletion is done whatever happens here: a bus that fails is logged, not the client's."""
    last = deletion.last_known
    if not deletion.deleted and (last is None or last.status is RecordingStatus.DELETED):
        return
    if last is None:
        account = context.recordings.provider(provider).account_id
        last = Recording(provider, rid, RecordingStatus.DELETED, "deleted", account_id=account)
    gone = dataclasses.replace(last, status=RecordingStatus.DELETED, provider_status="deleted")
    event = RecordingEvent(context.tenant.name, RecordingEventType.DELETED, gone, datetime.now(UTC))
    try:
        await context.events.publish(event)
    except Exception:
        logger.exception("could not publish the DELETED event of a %s recording", provider.name)


def _code(exc: BaseException) -> str:
    if isinstance(exc, GatewayError):
        return exc.code
    return "CANCELLED" if isinstance(exc, asyncio.CancelledError) else "INTERNAL_SERVER_ERROR"


def _audit(
    info: strawberry.Info[Context, None],
    provider: Provider | None,
    recording_id: object,
    outcome: str,
    **more: str,
) -> None:
    context = info.context
    principal: Principal = context.request.state.principal
    audit(
        "deleteRecording",
        tenant=context.tenant.name,
        caller=principal.caller,
        provider=provider.name if isinstance(provider, Provider) else "-",
        id=str(recording_id) if recording_id is not None else "-",
        request=request_id(),
        outcome=outcome,
        **more,
    )
