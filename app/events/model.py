"""What a recording event says: which tenant's recording, what happened to it, and when."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from app.models import Recording


class RecordingEventType(enum.Enum):
    """What happened to a recording."""

    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    COMPLETED = "completed"
    FAILED = "failed"
    TRANSCRIBED = "transcribed"
    DELETED = "deleted"


@dataclass(frozen=True)
class RecordingEvent:
    """One change of one recording of ``tenant``; ``recording`` is its state after it."""

    tenant: str
    type: RecordingEventType
    recording: Recording
    at: datetime
