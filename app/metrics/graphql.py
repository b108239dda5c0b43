"""GraphQL request metrics: the bounded ``operation`` label, the outcomes, and the one place
a request is counted (``observe``).

The gate (``app.access.gate``) times every request to ``/graphql`` and counts it once, when
it is answered: ``refused`` when the gate refused it, else what the view
(``app.schema.view``) left in the request's state under ``OUTCOME``: ``ok``, ``partial``
(data and errors), ``error`` (errors and no data) or ``refused`` (Strawberry's own 4xx, or
the tenant's rate limit: nothing was executed). A view that raised counts as ``error``.

The operation name comes from the client, so it is both untrusted and unbounded: a label
is the name only when it is a GraphQL Name of at most 64 characters, and only for the
first ``MAX_OPERATIONS`` distinct names an app sees; later ones are ``other``, the rest
``anonymous``. A name that looks like an id or a credential (a run of 16 hex digits, as in
Twilio's SIDs and auth tokens, or the gateway's own API key prefix) is ``anonymous`` too: a
client that pastes one there must not see it published. A name already seen costs one dict
lookup.
"""

from __future__ import annotations

import re
import time

from app.access.keys import PREFIX as KEY_PREFIX
from app.metrics import GRAPHQL_DURATION, GRAPHQL_REQUESTS

#: Distinct operation names an app labels by name; later ones are ``OTHER``.
MAX_OPERATIONS = 200
#: The label of a request without a (valid) operation name.
ANONYMOUS = "anonymous"
#: The label of a valid name seen after ``MAX_OPERATIONS`` others.
OTHER = "other"

#: The key in the ASGI scope's state where the view leaves the request's outcome.
OUTCOME = "graphql_outcome"
OK = "ok"
PARTIAL = "partial"
ERROR = "error"
REFUSED = "refused"

#: A GraphQL Name (the spec's ``/[_A-Za-z][_0-9A-Za-z]*/``), up to 64 characters.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
#: What an id or a credential looks like inside a Name (see the module docstring).
_SECRET_LIKE = re.compile(rf"[0-9A-Fa-f]{{16}}|^{re.escape(KEY_PREFIX)}")


class OperationLabels:
    """The ``operation`` label of a client's operation name, over at most ``limit``
    distinct names (see the module docstring)."""

    def __init__(self, limit: int = MAX_OPERATIONS) -> None:
        self.limit = limit
        self._known: dict[str, str] = {}

    def __call__(self, name: object) -> str:
        if not isinstance(name, str):
            return ANONYMOUS
        label = self._known.get(name)
        if label is not None:
            return label
        if _NAME.fullmatch(name) is None or _SECRET_LIKE.search(name):
            return ANONYMOUS  # never remembered: invalid names must not fill the table
        label = name if len(self._known) < self.limit else OTHER
        if label == name:
            self._known[name] = name
        return label


def observe(operation: str, outcome: str, started: float) -> None:
    """Count one answered GraphQL request, begun at ``started`` (``time.perf_counter()``)."""
    GRAPHQL_REQUESTS.labels(operation, outcome).inc()
    GRAPHQL_DURATION.labels(operation).observe(time.perf_counter() - started)
