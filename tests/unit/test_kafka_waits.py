"""Bounded waits sharing timers: outcomes, timeouts, the future left alone."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatmaid_kafka.producer import PublishError
from chatmaid_kafka.waits import BoundedWaits


async def test_the_outcome_of_the_future_is_the_waits() -> None:
    loop = asyncio.get_running_loop()
    waits = BoundedWaits(5)
    done, failed = loop.create_future(), loop.create_future()
    loop.call_soon(done.set_result, None)
    loop.call_soon(failed.set_exception, PublishError("no ack"))
    await waits.wait(done)
    with pytest.raises(PublishError):
        await waits.wait(failed)


async def test_a_wait_times_out_and_leaves_the_future_running() -> None:
    loop = asyncio.get_running_loop()
    waits = BoundedWaits(0.05)
    slow = loop.create_future()
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await waits.wait(slow)
    assert 0.05 <= time.monotonic() - started < 1  # at least the timeout
    assert not slow.done()  # not cancelled: a late ack still counts
    slow.set_result(None)
    await waits.wait(slow)  # and is seen by the next wait at once


async def test_a_wait_that_began_later_ends_later() -> None:
    loop = asyncio.get_running_loop()
    waits = BoundedWaits(0.2)
    first = asyncio.ensure_future(waits.wait(loop.create_future()))
    also_first = asyncio.ensure_future(waits.wait(loop.create_future()))
    await asyncio.sleep(0.1)
    later = asyncio.ensure_future(waits.wait(loop.create_future()))
    await asyncio.wait([first, also_first], timeout=5)
    assert [task.done() for task in (first, also_first, later)] == [True, True, False]
    for task in (first, also_first, later):
        with pytest.raises(asyncio.TimeoutError):
            await task


async def test_a_cancelled_wait_does_not_cancel_the_future() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    waiting = asyncio.ensure_future(BoundedWaits(5).wait(future))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not future.cancelled()
    future.set_result(None)
