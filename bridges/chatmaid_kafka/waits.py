"""Waiting for futures with a timeout, one timer for all the waits of a loop pass.

``asyncio.wait_for(asyncio.shield(future), timeout)`` arms a timer and wraps the future
twice for every wait; at thousands of webhooks a second that is a share of the
receiver's CPU worth saving. ``BoundedWaits`` arms one timer per loop pass for every
wait started in it (so a wait may end up to one pass early) and never cancels the
future waited for: a late outcome still counts for whoever looks at it next. A timer
holds only the waits still pending: finished ones are not kept alive (and promoted
into the collector's oldest generation) for the whole timeout.
"""

from __future__ import annotations

import asyncio
from functools import partial


class BoundedWaits:
    """Waits of at most ``timeout`` seconds each."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._this_pass: set[asyncio.Future[None]] | None = None

    async def wait(self, future: asyncio.Future[None]) -> None:
        """``future``'s outcome, or ``asyncio.TimeoutError`` once the timeout passed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self._this_pass is None:
            self._this_pass = set()
            loop.call_later(self._timeout, _expire, self._this_pass)
            loop.call_soon(self._end_pass)
        pending = self._this_pass
        pending.add(waiter)
        future.add_done_callback(partial(_relay, waiter, pending))
        await waiter

    def _end_pass(self) -> None:
        self._this_pass = None


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


def _expire(waiters: set[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(asyncio.TimeoutError())
