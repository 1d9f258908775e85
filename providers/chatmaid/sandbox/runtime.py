"""The running sandbox: the store plus the services that act on it, and reset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from starlette.applications import Starlette
from starlette.requests import Request

from .faults import FaultInjector
from .lifecycle import Lifecycle
from .options import SandboxOptions
from .ratelimit import RateLimiter
from .seed import reseed
from .state import SandboxState
from .webhooks import WebhookDispatcher


class Sandbox:
    """One object holding everything a request may touch; handlers get it, not globals."""

    def __init__(self, state: SandboxState, options: SandboxOptions) -> None:
        self.state = state
        self.options = options
        self.limiter = RateLimiter()
        self.faults = FaultInjector(options.random_seed)
        self.webhooks = WebhookDispatcher(state)
        self.lifecycle = Lifecycle(state, self.webhooks.emit)

    def reset(self) -> None:
        """Back to the seed and the start options: no messages, faults, buckets or queues."""
        self.lifecycle.cancel_all()
        self.webhooks.reset()
        self.limiter.reset()
        self.faults.clear()
        reseed(self.state, self.options)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Starlette lifespan: webhook workers run while the server does."""
        async with self.webhooks.running():
            yield
        self.lifecycle.cancel_all()


def sandbox_of(request: Request) -> Sandbox:
    """The sandbox a request's app serves (admin handlers take it from here)."""
    return cast(Sandbox, request.app.state.sandbox)
