"""A token bucket per API key, shared by every client of the process that uses the key.

It is a GCRA ("virtual scheduling") bucket: ``reserve()`` books the next free slot and
says how long to wait for it, without sleeping itself, so one implementation serves
threads and asyncio tasks alike (the lock is never held across a wait).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """At most ``per_minute`` requests a minute, in bursts of at most ``burst``."""

    def __init__(
        self, per_minute: float, *, burst: int | None = None, clock: Clock = time.monotonic
    ) -> None:
        self._clock = clock
        self._theoretical_arrival = clock()
        self._lock = threading.Lock()
        self._fixed_burst = burst
        self.per_minute = per_minute
        self.burst = 1
        self._interval = self._tolerance = 0.0
        self.set_rate(per_minute)

    def set_rate(self, per_minute: float) -> None:
        """Change the rate from now on (e.g. a process's share of a key after a rebalance).

        Requests already waiting keep their slots; the slots booked ahead count as many
        at the new rate (a slow rate's bookings do not hold up a faster one). The burst
        follows the rate unless it was fixed.
        """
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        burst = (
            self._fixed_burst if self._fixed_burst is not None else max(1, int(per_minute // 10))
        )
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        with self._lock:
            interval = 60.0 / per_minute
            now = self._clock()
            ahead = self._theoretical_arrival - now
            if ahead > 0 and self._interval > 0:
                self._theoretical_arrival = now + ahead * interval / self._interval
            self.per_minute = per_minute
            self.burst = burst
            self._interval = interval
            self._tolerance = (burst - 1) * self._interval

    def reserve(self) -> float:
        """Book one request; return the seconds to wait before sending it (0 if none)."""
        return self._book(max_wait=float("inf"))  # type: ignore[return-value]

    def try_reserve(self, *, max_wait: float) -> float | None:
        """Book one request if its slot is at most ``max_wait`` seconds away, else ``None``."""
        return self._book(max_wait=max_wait)

    def _book(self, *, max_wait: float) -> float | None:
        with self._lock:
            now = self._clock()
            arrival = max(self._theoretical_arrival, now)
            send_at = max(now, arrival - self._tolerance)
            if send_at - now > max_wait:
                return None
            self._theoretical_arrival = arrival + self._interval
            return send_at - now

    def next_slot_in(self) -> float:
        """Seconds until a request booked now could be sent (0: now); books nothing."""
        with self._lock:
            now = self._clock()
            return max(0.0, max(self._theoretical_arrival, now) - self._tolerance - now)

    def hold(self, seconds: float) -> None:
        """Book nothing for ``seconds`` (the server asked us to back off)."""
        with self._lock:
            resume = self._clock() + seconds + self._tolerance
            self._theoretical_arrival = max(self._theoretical_arrival, resume)

    def __repr__(self) -> str:
        return f"TokenBucket(per_minute={self.per_minute:g}, burst={self.burst})"


_shared: dict[tuple[str, float, int | None], TokenBucket] = {}
_shared_lock = threading.Lock()


def shared_bucket(api_key: str, per_minute: float, burst: int | None = None) -> TokenBucket:
    """The process-wide bucket for a key and limit, created on first use."""
    fingerprint = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
    with _shared_lock:
        bucket = _shared.get((fingerprint, per_minute, burst))
        if bucket is None:
            bucket = TokenBucket(per_minute, burst=burst)
            _shared[(fingerprint, per_minute, burst)] = bucket
        return bucket
