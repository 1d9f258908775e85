"""Fault injection on ``/v1``: latency, 5xx answers, dropped connections, 429 windows.

Each fault is scoped to a method and a path prefix (either may be left open), fires
for a ``fraction`` of matching requests (coin flips from a seeded RNG, so a run is
repeatable) and at most ``count`` times. A 5xx or 429 fault answers *instead of*
processing the request; a dropped connection happens *after* processing, so the
client sees a transport error for a request the sandbox did carry out.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .responses import ApiError, RateLimited

FaultKind = Literal["latency", "error", "drop", "rate_limit"]


@dataclass(slots=True)
class Fault:
    """One injected fault. ``seconds`` is the added latency or the 429 window's length."""

    id: str
    kind: FaultKind
    method: str | None = None
    path: str | None = None
    seconds: float = 0.0
    fraction: float = 1.0
    status: int = 503
    retry_after: int | None = None
    remaining: int | None = None
    until: float | None = None

    def matches(self, method: str, path: str) -> bool:
        """True when the fault is scoped to this request."""
        return (self.method is None or self.method == method) and (
            self.path is None or path.startswith(self.path)
        )

    def to_admin(self) -> dict[str, object]:
        """The admin view."""
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "seconds": self.seconds,
            "fraction": self.fraction,
            "status": self.status,
            "retryAfter": self.retry_after,
            "remaining": self.remaining,
        }


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one request: wait, answer instead, and/or drop the connection."""

    latency: float = 0.0
    answer: ApiError | None = None
    drop: bool = False


NO_FAULTS = FaultPlan()


class FaultInjector:
    """The active faults and the seeded coin that decides fractions."""

    def __init__(self, seed: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._seed = seed
        self._random = random.Random(seed)
        self._clock = clock
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Activate a fault; a 429 window starts now."""
        if fault.kind == "rate_limit":
            fault.until = self._clock() + fault.seconds
        self.faults.append(fault)
        return fault

    def active(self) -> list[Fault]:
        """The faults in force now (an ended 429 window is dropped here too)."""
        now = self._clock()
        self.faults = [f for f in self.faults if f.until is None or now < f.until]
        return self.faults

    def remove(self, fault_id: str) -> bool:
        """Deactivate one fault; False if there was none with that ID."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def clear(self) -> None:
        """Deactivate every fault and restart the coin from the seed."""
        self.faults.clear()
        self._random.seed(self._seed)

    def plan(self, method: str, path: str) -> FaultPlan:
        """The faults that fire for this request."""
        if not self.faults:
            return NO_FAULTS
        now = self._clock()
        latency, answer, drop = 0.0, None, False
        for fault in list(self.faults):
            if fault.until is not None and now >= fault.until:
                self.faults.remove(fault)
                continue
            if not fault.matches(method, path) or not self._fires(fault):
                continue
            if fault.kind == "latency":
                latency += fault.seconds
            elif fault.kind == "drop":
                drop = True
            elif answer is None and fault.kind == "error":
                answer = ApiError(fault.status, f"Injected fault: HTTP {fault.status}")
            elif answer is None and fault.until is not None:
                answer = RateLimited(fault.retry_after or max(1, math.ceil(fault.until - now)))
        return FaultPlan(latency, answer, drop)

    def _fires(self, fault: Fault) -> bool:
        if fault.fraction < 1.0 and self._random.random() >= fault.fraction:
            return False
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
        return True


class DroppedResponse(Response):
    """Sends a response's status, headers and half its body, then gives up.

    The server closes the connection when the app returns mid-body, so the client
    sees a protocol error (``httpx.RemoteProtocolError``), as for a dropped link.
    """

    def __init__(self, inner: Response) -> None:
        super().__init__(bytes(inner.body), inner.status_code, media_type=inner.media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})


class _DroppedResponseLogFilter(logging.Filter):
    """Hides uvicorn's complaint about the responses ``DroppedResponse`` leaves unfinished."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


def quiet_dropped_response_logs() -> None:
    """Install the filter on uvicorn's error logger (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DroppedResponseLogFilter) for f in logger.filters):
        logger.addFilter(_DroppedResponseLogFilter())
