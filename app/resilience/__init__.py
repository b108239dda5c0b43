"""How every provider call is guarded: a breaker, a deadline, retries within it, a budget.

``CallGuard`` (``guard``) wraps one logical call of one provider account (a metadata GET read to
its last byte, a listing page, the opening of a media download up to its headers):

1. the account's circuit breaker (``breaker``) fails it at once while open;
2. a deadline bounds it from start to last byte, retries and their waits included: the call's
   own (``GATEWAY_UPSTREAM_TIMEOUT``), or what is left of the GraphQL request's
   (``GATEWAY_REQUEST_TIMEOUT``, ``deadline``), whichever ends first;
3. within it, transient failures of idempotent GETs are retried (``retries``: tenacity, with
   exponential backoff and full jitter, ``Retry-After`` honoured up to a bound), as long as the
   account's retry budget (``budget``) allows.

Breakers and budgets are per replica: each sees the failures of its own calls, which is what
a breaker needs (a replica whose network path is broken opens on its own), and costs no Redis
round trip on the hot path.
"""

from app.resilience.breaker import Breaker, BreakerState
from app.resilience.budget import RetryBudget
from app.resilience.guard import CallGuard, Resilience

__all__ = ["Breaker", "BreakerState", "CallGuard", "Resilience", "RetryBudget"]
