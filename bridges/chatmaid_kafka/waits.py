"""Waiting for futures with a timeout, the waits that end together sharing one timer.

``asyncio.wait_for(asyncio.shield(future), timeout)`` arms a timer and wraps the future
twice for every wait; at thousands of webhooks a second that is a share of the
receiver's CPU worth saving. ``BoundedWaits`` rounds each deadline up to the next tick
(``GRANULARITY``) and arms one timer per tick for every wait ending in it, so a wait
lasts at least its timeout and at most one tick longer; there are only ``timeout /
GRANULARITY`` timers alive at a time, however many webhooks wait. A tick holds only its
waits still pending, and the future waited for is never cancelled: a late outcome
still counts for whoever looks at it next.
"""

from __future__ import annotations

import asyncio
import math
from functools import partial

#: Seconds between the deadlines that share a timer.
GRANULARITY = 0.05


class BoundedWaits:
    """Waits of at least ``timeout`` seconds and at most one tick more."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._ticks: dict[int, set[asyncio.Future[None]]] = {}

    async def wait(self, future: asyncio.Future[None]) -> None:
        """``future``'s outcome, or ``asyncio.TimeoutError`` once the timeout passed."""
        loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + self._timeout) / GRANULARITY)
        pending = self._ticks.get(tick)
        if pending is None:
            pending = self._ticks[tick] = set()
            loop.call_at(tick * GRANULARITY, self._expire, tick)
        waiter: asyncio.Future[None] = loop.create_future()
        pending.add(waiter)
        future.add_done_callback(partial(_relay, waiter, pending))
        await waiter

    def _expire(self, tick: int) -> None:
        for waiter in self._ticks.pop(tick):
            if not waiter.done():
                waiter.set_exception(asyncio.TimeoutError())


def _relay(
    waiter: asyncio.Future[None],
    pending: set[asyncio.Future[None]],
    future: asyncio.Future[None],
) -> None:
    pending.discard(waiter)
    if future.cancelled():
        if not waiter.done():
            waiter.cancel()
        return
    error = future.exception()  # retrieved even when nobody waits any more
    if waiter.done():
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)
