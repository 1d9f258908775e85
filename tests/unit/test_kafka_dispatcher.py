"""The dispatcher: a concurrency bound, per-key order, and cancellation by partition."""

from __future__ import annotations

import asyncio

import pytest

from chatmaid_kafka.dispatcher import Dispatcher, Job
from chatmaid_kafka.offsets import PartitionId

P0 = PartitionId("notify", 0)
P1 = PartitionId("notify", 1)


class Recorder:
    """A handler that takes a while and records concurrency and order."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.done: list[tuple[bytes | None, int]] = []

    async def __call__(self, item: tuple[bytes | None, int]) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.delay)
            self.done.append(item)
        finally:
            self.running -= 1


def jobs(partition: PartitionId, keys: list[bytes | None]) -> list[Job[tuple[bytes | None, int]]]:
    return [Job(partition, key, (key, i)) for i, key in enumerate(keys)]


async def test_concurrency_never_exceeds_the_bound() -> None:
    handler = Recorder()
    dispatcher = Dispatcher(handler, concurrency=5)
    dispatcher.submit(jobs(P0, [None] * 30))
    dispatcher.submit(jobs(P1, [f"k{i}".encode() for i in range(30)]))
    await dispatcher.join()
    assert len(handler.done) == 60
    assert handler.peak == 5


async def test_events_of_one_key_run_in_order_and_one_at_a_time() -> None:
    handler = Recorder(delay=0.001)
    dispatcher = Dispatcher(handler, concurrency=50)
    keys: list[bytes | None] = [b"a", b"b", b"a", b"c", b"a", b"b"] * 10
    dispatcher.submit(jobs(P0, keys))
    await dispatcher.join()
    for key in (b"a", b"b", b"c"):
        order = [index for k, index in handler.done if k == key]
        assert order == sorted(order)
        assert len(order) == keys.count(key)
    assert handler.peak == 3  # one at a time per key, three keys


async def test_a_key_submitted_later_joins_its_running_chain() -> None:
    handler = Recorder(delay=0.005)
    dispatcher = Dispatcher(handler, concurrency=10)
    dispatcher.submit([Job(P0, b"k", (b"k", 0))])
    await asyncio.sleep(0)
    dispatcher.submit([Job(P0, b"k", (b"k", 1))])
    await dispatcher.join()
    assert handler.done == [(b"k", 0), (b"k", 1)]
    assert handler.peak == 1


async def test_the_same_key_in_two_partitions_is_two_chains() -> None:
    handler = Recorder()
    dispatcher = Dispatcher(handler, concurrency=10)
    dispatcher.submit([Job(P0, b"k", (b"k", 0)), Job(P1, b"k", (b"k", 1))])
    await dispatcher.join()
    assert handler.peak == 2


async def test_cancel_drops_a_partitions_queued_and_running_jobs() -> None:
    handler = Recorder(delay=0.05)
    dispatcher = Dispatcher(handler, concurrency=2)
    dispatcher.submit(jobs(P0, [b"a", b"a", b"a", None, None]))
    dispatcher.submit(jobs(P1, [b"x"]))
    await asyncio.sleep(0.01)
    assert dispatcher.cancel([P0]) > 0
    await dispatcher.join()
    assert [key for key, _ in handler.done] == [b"x"]
    assert dispatcher.active == 0


async def test_a_failing_job_does_not_stall_its_key(caplog: pytest.LogCaptureFixture) -> None:
    done: list[int] = []

    async def handle(item: int) -> None:
        if item == 0:
            raise RuntimeError("boom")
        done.append(item)

    dispatcher: Dispatcher[int] = Dispatcher(handle, concurrency=1)
    dispatcher.submit([Job(P0, b"k", 0), Job(P0, b"k", 1)])
    await dispatcher.join()
    assert done == [1]
    assert "failed unexpectedly" in caplog.text


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Dispatcher(Recorder(), concurrency=0)
