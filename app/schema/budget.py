"""What a request may spend, checked once it is valid and before it runs.

1. **Cost**: the upstream requests the operation may make (``app.schema.cost``), for the
   caller's tenant. Over ``GATEWAY_MAX_COST``, or over the tenant's whole rate budget (it could
   never run), it is refused with COST_LIMIT_EXCEEDED (``extensions.cost``,
   ``extensions.maxCost``).
2. **Rate**: the tenant's rate limit, counted in those same cost units and shared by every
   replica through the rate limiter's storage (``app.access.ratelimit``). Over it, the
   response is HTTP 429 with ``Retry-After`` and RATE_LIMITED.

Either way nothing is executed: the extension sets the operation's result, which Strawberry
then returns instead of executing (``execution_context.result``). Mutations are charged the
same way; their answers are marked ``no-store`` here, so the response cache never keeps one
(``app.responses``): a mutation must run every time it is sent. With ``X-Gateway-Cost: 1``
the response's ``extensions.cost`` shows the estimate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from app.errors import CostLimitExceededError, GatewayError, RateLimitExceededError
from app.metrics import RATE_LIMITED
from app.schema.cost import estimate

if TYPE_CHECKING:
    from app.schema.context import Context

#: The request header that asks for the estimate in ``extensions.cost``.
COST_HEADER = "x-gateway-cost"


class RequestBudget(SchemaExtension):
    """Refuses an operation over the cost limit or the tenant's rate limit (see module)."""

    def __init__(self) -> None:
        super().__init__()
        self.cost: int | None = None

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context: Context = execution.context
        assert execution.graphql_document is not None
        settings = context.settings
        tenant = context.tenant
        self.cost = cost = estimate(
            execution.graphql_document,
            execution.operation_name,
            execution.variables,
            providers=len(tenant.providers),
            max_page_size=settings.max_page_size,
            max_batch=settings.max_batch,
            stats_max_pages=settings.stats_max_pages,
        )
        context.request.state.cost = cost  # what a response cache hit is charged
        if execution.operation_type is not OperationType.QUERY:
            # Only a query's answer may be kept: a mutation's must run every time.
            context.freshness.no_store(f"a {execution.operation_type.value}")
        limit = settings.limits.max_cost
        rate = tenant.rate_limit
        if rate is not None and rate.amount < limit:
            limit = rate.amount  # a request over its tenant's whole budget could never run
        if cost > limit:
            _refuse(
                execution,
                CostLimitExceededError(
                    f"this request may cost {cost} upstream requests, over the limit of {limit}",
                    cost=cost,
                    max_cost=limit,
                ),
            )
        elif rate is not None and cost > 0:
            decision = await context.limiter.hit(tenant.name, rate, cost)
            if not decision.allowed:
                RATE_LIMITED.labels(tenant.name).inc()
                context.response.status_code = 429
                context.response.headers["retry-after"] = str(decision.retry_after)
                _refuse(
                    execution,
                    RateLimitExceededError(
                        f"rate limit reached: this request needs {cost} units; retry in "
                        f"{decision.retry_after} s",
                        retry_after=decision.retry_after,
                    ),
                )
        yield

    def get_results(self) -> dict[str, Any]:
        context: Context = self.execution_context.context
        if self.cost is not None and context.request.headers.get(COST_HEADER) == "1":
            return {"cost": self.cost}
        return {}


def _refuse(execution: ExecutionContext, error: GatewayError) -> None:
    """Set the operation's result to ``error``: Strawberry then executes nothing."""
    located = GraphQLError(error.message, original_error=error)
    execution.result = ExecutionResult(data=None, errors=[located])
