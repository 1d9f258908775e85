"""One key's rate limit shared by the processes of a consumer group, with no coordinator.

Each process takes its part of the key's limit L by the notify topic's partitions it
owns, each partition weighed by whether it has work: 1 while the group's committed
offset is below its log end (``GroupDemand``, read from the broker by every process
alike) or the process holds unfinished events of it, ``IDLE_WEIGHT`` otherwise. With
weights w, a process sends at most L * w(owned) / w(all) a minute, recomputed every
second and after every rebalance. The shares of the group add up to L; a process whose
partitions run dry lends nearly all of its share to those with a backlog, and takes it
back within a second of new events. Each new assignment starts without burst credit
(the rest of the group kept sending meanwhile). Without a reading of the group (the broker away)
every partition weighs 1: the share is the process's part of the partitions. While
views or assignments change, the shares may briefly add up to a little more than L;
the core's 429 handling covers those moments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from chatmaid import TokenBucket

from .metrics import BridgeMetrics

logger = logging.getLogger("chatmaid_kafka.rateshare")

#: What a partition with no work weighs against one with work: its owner keeps a little
#: of the limit (its next event goes out without waiting for the next reading).
IDLE_WEIGHT = 0.05


def share_of(owned: Collection[int], total: int, busy: Collection[int] | None) -> float:
    """The fraction of the key's limit for the owner of ``owned`` of ``total`` partitions,
    ``busy`` being those with work (``None``: not known, all weigh the same)."""
    if busy is None:
        return max(len(owned), 1) / total

    def weight(partition: int) -> float:
        return 1.0 if partition in busy else IDLE_WEIGHT

    everything = sum(weight(partition) for partition in range(total))
    return max(sum(weight(partition) for partition in owned), IDLE_WEIGHT) / everything


class RateShare:
    """Sets a process's bucket to its share of the key's limit."""

    def __init__(
        self,
        bucket: TokenBucket,
        key_limit: float,
        metrics: BridgeMetrics,
        *,
        group_busy: Callable[[], Collection[int] | None] = lambda: None,
    ) -> None:
        self._bucket = bucket
        self._key_limit = key_limit
        self._metrics = metrics
        self._group_busy = group_busy
        self._owned: tuple[frozenset[int], int] | None = None
        metrics.rate_limit.set(bucket.per_minute)

    def update(self, *, owned: Collection[int], working: Collection[int], total: int) -> None:
        """The process owns partitions ``owned`` of the topic's ``total``, and holds
        unfinished events of ``working``."""
        if total < 1:
            return
        seen = self._group_busy()
        busy = None if seen is None else {*seen, *working}
        rate = self._key_limit * share_of(owned, total, busy)
        assignment = (frozenset(owned), total)
        assignment_changed = assignment != self._owned
        if assignment_changed:
            self._owned = assignment
            logger.info(
                "rate share: %.0f of the key's %.0f requests a minute (%d of %d partitions, "
                "%s with work)",
                rate,
                self._key_limit,
                len(owned),
                total,
                "unknown" if busy is None else len(busy),
            )
        if abs(rate - self._bucket.per_minute) > 1e-9:
            self._bucket.set_rate(rate)
            self._metrics.rate_limit.set(rate)
        if assignment_changed:
            # No burst credit saved while it had other partitions (or none): the others
            # kept sending meanwhile, and a burst now would pass the key's bucket.
            self._bucket.hold(0)
