"""The Mutation root: every mutation the schema serves, one base class per feature.

Each feature keeps its mutations in its own module (``deletion``, ``transcriptions``); the
root only gathers them. Mutations run only over POST (Strawberry refuses them over GET, and
the view answers that refusal in the gate's typed shape); their answers are never kept by
the response cache (``app.schema.budget`` marks them ``no-store``) and they are charged to
the cost budget and the tenant's rate limit like queries (``app.schema.cost``).
"""

from __future__ import annotations

import strawberry

from app.schema.deletion import DeletionMutations
from app.schema.transcriptions import TranscriptionMutations


@strawberry.type
class Mutation(DeletionMutations, TranscriptionMutations):
    pass
