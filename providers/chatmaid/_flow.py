"""The shape shared by the sync and async clients: policy as a generator of steps.

Policy code (retries, waits, pagination, polling) is written once as a generator that
yields ``Send(request)`` or ``Sleep(seconds)`` and is sent back the outcome: an
``httpx.Response``, the ``httpx.TransportError`` raised instead, or ``None`` after a
sleep. ``run_sync`` and ``run_async`` are the only places that do I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

import httpx

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send this request; the outcome is sent back into the flow."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds before going on."""

    seconds: float


Step = Send | Sleep
Outcome = httpx.Response | httpx.TransportError | None
Flow = Generator[Step, Outcome, T]


def run_sync(
    flow: Flow[T],
    send: Callable[[httpx.Request], httpx.Response],
    sleep: Callable[[float], object],
) -> T:
    """Drive a flow with blocking I/O."""
    outcome: Outcome = None
    try:
        while True:
            step = flow.send(outcome)
            outcome = None  # drop the last response before a long sleep
            if isinstance(step, Sleep):
                sleep(step.seconds)
                continue
            try:
                outcome = send(step.request)
            except httpx.TransportError as exc:
                outcome = exc
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(
    flow: Flow[T],
    send: Callable[[httpx.Request], Awaitable[httpx.Response]],
    sleep: Callable[[float], Awaitable[object]],
) -> T:
    """Drive a flow with asyncio I/O."""
    outcome: Outcome = None
    try:
        while True:
            step = flow.send(outcome)
            outcome = None  # drop the last response before a long sleep
            if isinstance(step, Sleep):
                await sleep(step.seconds)
                continue
            try:
                outcome = await send(step.request)
            except httpx.TransportError as exc:
                outcome = exc
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
