"""What every ``/v1`` request goes through before and after its endpoint.

Faults (latency, an injected answer), authentication (401), the key's rate limit
(429; every authenticated request counts), scopes and subscription (403), then the
endpoint; the answer is counted for usage, and dropped mid-body if a fault says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import ScopeRule, authenticate, authorize
from .faults import DroppedResponse
from .responses import ApiError, RateLimited, requested_url
from .runtime import Sandbox
from .state import ApiKeyRecord

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Call:
    """An authorised request: what an endpoint function receives."""

    request: Request
    key: ApiKeyRecord
    sandbox: Sandbox


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class V1Route:
    """A public endpoint: its handler, scope rule, and what the OpenAPI document says."""

    method: str
    path: str
    rule: ScopeRule
    handler: Handler
    summary: str
    status: int
    data: str
    errors: tuple[int, ...]
    query: tuple[str, ...] = ()
    body: str | None = None

    @property
    def name(self) -> str:
        """``METHOD /path/{param}``, the key of request counts."""
        return f"{self.method} {self.path}"

    def bind(self, sandbox: Sandbox) -> Route:
        """The Starlette route serving this endpoint on ``sandbox``."""
        return Route(self.path, self._endpoint(sandbox), methods=[self.method], name=self.name)

    def _endpoint(self, sandbox: Sandbox) -> Endpoint:
        handler, rule, name = self.handler, self.rule, self.name
        state, faults, limiter = sandbox.state, sandbox.faults, sandbox.limiter

        async def endpoint(request: Request) -> Response:
            plan = faults.plan(request.method, request.scope["path"])
            if plan.latency:
                await asyncio.sleep(plan.latency)
            key = None
            try:
                if plan.answer is not None:
                    raise plan.answer
                key = authenticate(request.headers.get("authorization"), state)
                limit = state.settings.rate_limit if key.rate_limit is None else key.rate_limit
                retry_after = limiter.take(key.id, limit)
                if retry_after is not None:
                    raise RateLimited(retry_after)
                authorize(key, rule, state)
                response = await handler(Call(request, key, sandbox))
            except ApiError as error:
                if isinstance(error, RateLimited):
                    error.header = state.settings.retry_after_header
                response = error.response(requested_url(request))
            state.requests.record(name, response.status_code, authenticated=key is not None)
            return DroppedResponse(response) if plan.drop else response

        return endpoint
