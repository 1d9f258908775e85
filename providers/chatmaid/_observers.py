"""What the core tells adapters while it works: attempts, retries, waits and give-ups.

Pass ``observers=[callable, ...]`` to a client; each callable receives every event
below as it happens, in the spirit of httpx's ``event_hooks``. Adapters build metrics,
logs and back-pressure on these instead of wrapping the HTTP transport: the waits the
events report are the ones the core will honour (a 429's ``retryAfter`` from the body,
as the docs document it). An observer must be quick and must not raise; an exception
from one is logged and ignored, so it can never break a call.

>>> from chatmaid import ChatmaidClient, RateLimitWait
>>> def on_event(event):
...     if isinstance(event, RateLimitWait):
...         print(f"{event.path}: the API asked us to wait {event.seconds:.0f}s")
>>> client = ChatmaidClient("sk_test_...", observers=[on_event])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ._errors import ChatmaidError, RateLimitedError

logger = logging.getLogger("chatmaid")

RetryReason = Literal["rate_limited", "server_error", "transport_error"]
GiveUpReason = Literal["not_retryable", "max_attempts", "deadline"]


@dataclass(frozen=True, slots=True)
class CallEvent:
    """Base of every event: which request (method and path) and, for sends, its key."""

    method: str
    path: str
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class AttemptStarted(CallEvent):
    """Attempt number ``attempt`` (1-based) of a request is being sent."""

    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptFinished(CallEvent):
    """An attempt ended: with an HTTP status, or with ``error`` and no status (transport)."""

    attempt: int
    status_code: int | None
    error: ChatmaidError | None
    elapsed: float


@dataclass(frozen=True, slots=True)
class RetryScheduled(CallEvent):
    """The core will try again after ``delay`` seconds, because of ``error``."""

    attempt: int
    reason: RetryReason
    delay: float
    error: ChatmaidError


@dataclass(frozen=True, slots=True)
class RateLimitWait(CallEvent):
    """The API answered 429: every call on this key waits ``seconds`` (the honoured wait)."""

    seconds: float
    error: RateLimitedError


@dataclass(frozen=True, slots=True)
class LimiterWait(CallEvent):
    """The client-side rate limiter holds this request for ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class GaveUp(CallEvent):
    """The core stops trying and raises ``error``; ``reason`` says why."""

    attempt: int
    reason: GiveUpReason
    error: ChatmaidError


ClientEvent = (
    AttemptStarted | AttemptFinished | RetryScheduled | RateLimitWait | LimiterWait | GaveUp
)
Observer = Callable[[ClientEvent], object]


class Observers:
    """The observers of one client; ``emit`` calls each one and never raises."""

    __slots__ = ("_observers",)

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self._observers = tuple(observers)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def emit(self, event: ClientEvent) -> None:
        """Tell every observer about ``event``."""
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                logger.exception("chatmaid observer %r failed on %s", observer, event)
