"""The per-key token bucket holds its rate across threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest

from chatmaid import ChatmaidClient, TokenBucket
from chatmaid._ratelimit import shared_bucket

from .conftest import FakeTime


def test_burst_then_steady_rate() -> None:
    time = FakeTime(now=0.0)
    bucket = TokenBucket(60, burst=3, clock=time.clock)
    waits = [bucket.reserve() for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]


def test_idle_time_refills_no_more_than_the_burst() -> None:
    time = FakeTime(now=0.0)
    bucket = TokenBucket(60, burst=2, clock=time.clock)
    time.now = 1000.0
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 1.0]


def test_hold_delays_the_next_reservation() -> None:
    time = FakeTime(now=0.0)
    bucket = TokenBucket(600, burst=10, clock=time.clock)
    bucket.hold(5.0)
    assert bucket.reserve() == pytest.approx(5.0)


def _schedule(waits: list[float], now: float) -> list[float]:
    return sorted(now + w for w in waits)


def test_rate_holds_across_threads() -> None:
    # A frozen clock: every booking is made "now", so a slot is exactly now + its wait
    # and the check tests the lock, not how promptly a loaded machine runs the threads.
    start = 1000.0
    bucket = TokenBucket(6000, burst=5, clock=lambda: start)  # 100 per second after 5
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = _schedule(waits, start)
    # 200 requests at 100/s after a burst of 5: the last is booked ~1.95 s out, and no
    # one-second window holds more than 100 + burst requests.
    assert slots[-1] - start == pytest.approx(1.95, abs=0.05)
    for i in range(len(slots)):
        in_window = sum(1 for s in slots[i:] if s - slots[i] < 1.0)
        assert in_window <= 105


def test_rate_holds_across_asyncio_tasks() -> None:
    bucket = TokenBucket(6000, burst=1)
    start = bucket._clock()

    async def main() -> list[float]:
        async def task() -> float:
            return bucket.reserve()

        return await asyncio.gather(*(task() for _ in range(50)))

    slots = _schedule(asyncio.run(main()), start)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(0.01, abs=0.002)


def test_clients_with_the_same_key_share_one_bucket() -> None:
    first = ChatmaidClient("sk_test_shared0123456789", requests_per_minute=120)
    second = ChatmaidClient("sk_test_shared0123456789", requests_per_minute=120)
    other = ChatmaidClient("sk_test_other01234567890", requests_per_minute=120)
    assert first.config.bucket is second.config.bucket
    assert first.config.bucket is not other.config.bucket
    assert shared_bucket("sk_test_shared0123456789", 120) is first.config.bucket
    off = ChatmaidClient("sk_test_shared0123456789", requests_per_minute=None)
    assert off.config.bucket is None


def test_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(60, burst=0)


def test_the_rate_can_change_while_in_use() -> None:
    now = [0.0]
    bucket = TokenBucket(60, burst=1, clock=lambda: now[0])
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(1.0)  # 60/min: one a second
    now[0] = 0.5
    bucket.set_rate(600)  # this process now owns ten times the share
    # The request booked for t=1 keeps its slot; what was booked ahead of now (1.5 s at
    # 1 s a request) counts as 0.15 s at 0.1 s a request.
    assert bucket.reserve() == pytest.approx(0.15)
    assert bucket.reserve() == pytest.approx(0.25)  # then one every 0.1 s
    assert (bucket.per_minute, bucket.burst) == (600, 1)


def test_a_bad_new_rate_is_refused() -> None:
    bucket = TokenBucket(60)
    with pytest.raises(ValueError, match="per_minute must be positive"):
        bucket.set_rate(0)
    assert bucket.per_minute == 60
