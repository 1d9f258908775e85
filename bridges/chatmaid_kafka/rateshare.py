"""One key's rate limit shared by the processes of a consumer group, with no coordinator.

Each process takes the share of the notify topic's partitions it is assigned: with the
key's limit L and P partitions, a process owning n of them sends at most L * n / P a
minute, recomputed after every rebalance. The shares of the group add up to L; as events
spread over partitions, so does the demand. During a rebalance the shares may briefly add
up to more (a process gains partitions before another has let them go); the core's 429
handling covers those moments.
"""

from __future__ import annotations

import logging

from chatmaid import TokenBucket

from .metrics import BridgeMetrics

logger = logging.getLogger("chatmaid_kafka.rateshare")


class RateShare:
    """Sets a process's bucket to its share of the key's limit."""

    def __init__(self, bucket: TokenBucket, key_limit: float, metrics: BridgeMetrics) -> None:
        self._bucket = bucket
        self._key_limit = key_limit
        self._metrics = metrics
        self._owned: tuple[int, int] | None = None
        metrics.rate_limit.set(bucket.per_minute)

    def update(self, owned: int, total: int) -> None:
        """The process owns ``owned`` of the topic's ``total`` partitions now."""
        if total < 1 or self._owned == (owned, total):
            return
        self._owned = (owned, total)
        # A process with no partition sends nothing new; a floor keeps the bucket valid.
        rate = self._key_limit * max(owned, 1) / total
        self._bucket.set_rate(rate)
        self._metrics.rate_limit.set(rate)
        logger.info(
            "rate share: %.0f of the key's %.0f requests a minute (%d of %d partitions)",
            rate,
            self._key_limit,
            owned,
            total,
        )
