"""Which offsets may be committed: per partition, the contiguous finished watermark.

An offset is finished once its event was accepted by the API or dead-lettered, and the
record saying so was acknowledged by Kafka. Events finish out of order (sends run
concurrently), so a partition commits only up to its first unfinished offset. Trackers
are thread-safe: the poll loop adds and commits, the producer's callbacks finish.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple


class PartitionId(NamedTuple):
    """A topic partition; equal to (and hashes like) kafka-python's ``TopicPartition``."""

    topic: str
    partition: int


class OffsetTracker:
    """The offsets of one partition read in the current assignment, in order.

    ``committable()`` is the offset to commit (the next one to read after a restart):
    the first unfinished offset, or one past the last offset when all are finished.
    A stopped tracker starts no more work (``begin()`` is False) but still counts
    completions; a closed one (its partition is gone) ignores them too. While any of
    its events waits to be sent again (``block``), the partition is paused.
    """

    def __init__(self, partition: PartitionId) -> None:
        self.partition = partition
        self._lock = threading.Lock()
        self._order: deque[int] = deque()
        self._finished: set[int] = set()
        self._watermark: int | None = None
        self._committed: int | None = None
        self._running = 0
        self._blocked: dict[int, tuple[float, str]] = {}  # offset -> (since, why)
        self.stopped = False
        self.closed = False

    def add(self, offset: int) -> None:
        """Record that ``offset`` was read and awaits processing."""
        with self._lock:
            if self._order and offset <= self._order[-1]:
                raise ValueError(f"{self.partition}: offset {offset} read out of order")
            self._order.append(offset)

    def begin(self) -> bool:
        """Claim the start of one event's work; False once the tracker is stopped."""
        with self._lock:
            if self.stopped:
                return False
            self._running += 1
            return True

    def give_up(self) -> None:
        """A begun event ended without an outcome: its offset stays unfinished."""
        with self._lock:
            self._running -= 1

    def finish(self, offset: int) -> None:
        """Record that ``offset`` is finished (a no-op once the tracker is closed)."""
        with self._lock:
            if self.closed:
                return
            self._running -= 1
            self._finished.add(offset)
            while self._order and self._order[0] in self._finished:
                done = self._order.popleft()
                self._finished.discard(done)
                self._watermark = done + 1

    @property
    def pending(self) -> int:
        """Offsets read and not yet finished (queued or running)."""
        with self._lock:
            return len(self._order) - len(self._finished)

    @property
    def running(self) -> int:
        """Events begun and not yet finished."""
        with self._lock:
            return self._running

    def committable(self) -> int | None:
        """The offset to commit now, or ``None`` if nothing was read."""
        with self._lock:
            return self._order[0] if self._order else self._watermark

    def uncommitted(self) -> int | None:
        """``committable()`` if it moved since the last ``mark_committed``."""
        with self._lock:
            point = self._order[0] if self._order else self._watermark
            return None if point is None or point == self._committed else point

    def mark_committed(self, offset: int | None) -> None:
        """Remember what was committed (``None``: forget, so it is committed again)."""
        with self._lock:
            self._committed = offset

    def block(self, offset: int, reason: str, since: float) -> None:
        """``offset`` waits to be sent again, for ``reason``, since ``since``."""
        with self._lock:
            first_since = self._blocked.get(offset, (since, reason))[0]
            self._blocked[offset] = (first_since, reason)

    def unblock(self, offset: int) -> None:
        """``offset`` no longer waits (sent, dead-lettered or abandoned)."""
        with self._lock:
            self._blocked.pop(offset, None)

    def blockage(self) -> tuple[float, str] | None:
        """Since when the partition's longest waiting event waits, and why."""
        with self._lock:
            return min(self._blocked.values(), default=None)

    def stop(self) -> None:
        """Start no more work; running events may still finish."""
        with self._lock:
            self.stopped = True

    def close(self) -> None:
        """Ignore everything from now on: the partition is no longer ours."""
        with self._lock:
            self.stopped = self.closed = True


class OffsetBook:
    """The trackers of the current assignment. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trackers: dict[PartitionId, OffsetTracker] = {}

    def assign(self, partitions: Iterable[PartitionId]) -> None:
        """Start fresh trackers for newly assigned partitions (kept ones stay)."""
        with self._lock:
            for partition in partitions:
                key = PartitionId(*partition)
                if key not in self._trackers:
                    self._trackers[key] = OffsetTracker(key)

    def release(self, partitions: Iterable[PartitionId]) -> list[OffsetTracker]:
        """Close and forget the trackers of partitions no longer ours."""
        released = []
        with self._lock:
            for partition in partitions:
                tracker = self._trackers.pop(PartitionId(*partition), None)
                if tracker is not None:
                    tracker.close()
                    released.append(tracker)
        return released

    def get(self, partition: PartitionId) -> OffsetTracker | None:
        """The tracker of an assigned partition."""
        with self._lock:
            return self._trackers.get(PartitionId(*partition))

    def trackers(self, partitions: Iterable[PartitionId] | None = None) -> list[OffsetTracker]:
        """The trackers of ``partitions`` (default: all assigned)."""
        with self._lock:
            if partitions is None:
                return list(self._trackers.values())
            found = (self._trackers.get(PartitionId(*p)) for p in partitions)
            return [tracker for tracker in found if tracker is not None]

    def pending(self, partitions: Iterable[PartitionId] | None = None) -> int:
        """Unfinished offsets over ``partitions`` (default: all assigned)."""
        return sum(tracker.pending for tracker in self.trackers(partitions))

    def running(self, partitions: Iterable[PartitionId] | None = None) -> int:
        """Begun, unfinished events over ``partitions`` (default: all assigned)."""
        return sum(tracker.running for tracker in self.trackers(partitions))
