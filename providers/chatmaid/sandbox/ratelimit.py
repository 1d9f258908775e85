"""Per-key rate limiting: a token bucket per API key, refilled continuously.

A bucket holds at most the per-minute limit (so a fresh key may burst that many
requests) and gains ``limit / 60`` tokens a second. Over the limit, the answer says
how many whole seconds until the next token (at least 1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets by key ID."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key ID -> [tokens, last refill time, capacity]
        self._buckets: dict[str, list[float]] = {}

    def take(self, key_id: str, per_minute: int) -> int | None:
        """Take a token: ``None`` if allowed, else the seconds to wait (``retryAfter``)."""
        if per_minute <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None or bucket[2] != per_minute:
            bucket = self._buckets[key_id] = [float(per_minute), now, float(per_minute)]
        rate = per_minute / 60.0
        tokens = min(bucket[2], bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return None
        bucket[0] = tokens
        return max(1, math.ceil((1.0 - tokens) / rate))

    def reset(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()
