"""SignalWire's Twilio-compatible LaML API (``https://{space}/api/laml/2010-04-01``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from app.models import ListQuery, MediaFormat, Provider
from app.providers.base import UUID
from app.providers.laml import LamlProvider
from app.providers.protocol import ProviderLink


class SignalWireProvider(LamlProvider):
    """Recordings of one SignalWire project (the project id is the AccountSid)."""

    provider = Provider.SIGNALWIRE
    label = "SignalWire"
    id_pattern = UUID
    id_description = "a UUID"
    call_id_pattern = UUID
    conference_id_pattern = UUID

    def date_params(self, query: ListQuery) -> dict[str, str]:
        """RFC 2822 instants, both inclusive, widened to whole seconds (RFC 2822 has no less)."""
        params: dict[str, str] = {}
        if query.created_after is not None:
            params["DateCreated>"] = rfc2822(query.created_after.replace(microsecond=0))
        if query.created_before is not None:
            last = query.created_before - timedelta(microseconds=1)
            params["DateCreated<"] = rfc2822(_ceil_second(last))
        return params

    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        """The public ``.mp3``/``.wav`` URL; SignalWire media needs no credentials. The URL
        itself never expires, so ``expires_at`` is advisory: when to mint a new one."""
        return ProviderLink(self.media_url(recording_id, fmt), expires_at)


def rfc2822(moment: datetime) -> str:
    """``Sun, 01 Mar 2026 12:00:00 +0000``."""
    return format_datetime(moment.astimezone(UTC))


def _ceil_second(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)
