"""Which offsets may be committed: per partition, the contiguous finished watermark.

An offset is finished once its event was accepted by the API or dead-lettered, and the
record saying so was acknowledged by Kafka. Events finish out of order (sends run
concurrently), so a partition commits only up to its first unfinished offset, and the
commit's metadata lists the offsets above it that are finished too (a compressed
bitmap): a restart, or the partition's next owner, skips them instead of sending them
again. Trackers are thread-safe: the poll loop adds and commits, the producer's
callbacks finish.
"""

from __future__ import annotations

import base64
import threading
import zlib
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

#: Version tag of the commit metadata the bridge writes.
METADATA_PREFIX = "cm1:"
#: Brokers refuse metadata over ``offset.metadata.max.bytes`` (4096 by default); finished
#: offsets that do not fit are left out (and sent again, with the same key, if re-read).
MAX_METADATA_BYTES = 3000


class PartitionId(NamedTuple):
    """A topic partition; equal to (and hashes like) kafka-python's ``TopicPartition``."""

    topic: str
    partition: int


class CommitPoint(NamedTuple):
    """What to commit for a partition: the next offset to read, and the finished ones
    above it (``metadata``); ``version`` counts the changes it includes."""

    offset: int
    metadata: str
    version: int


def encode_finished(base: int, finished: Iterable[int]) -> str:
    """Commit metadata for the ``finished`` offsets above ``base`` ("" when none)."""
    above = sorted(offset - base - 1 for offset in finished if offset > base)
    if not above:
        return ""
    while above:
        bitmap = bytearray(above[-1] // 8 + 1)
        for bit in above:
            bitmap[bit // 8] |= 1 << (bit % 8)
        text = METADATA_PREFIX + base64.b64encode(zlib.compress(bytes(bitmap), 9)).decode()
        if len(text) <= MAX_METADATA_BYTES:
            return text
        above = above[: len(above) // 2]
    return ""


def decode_finished(base: int, metadata: str | None) -> set[int]:
    """The finished offsets ``encode_finished`` wrote for ``base`` (empty if unknown)."""
    if not metadata or not metadata.startswith(METADATA_PREFIX):
        return set()
    try:
        bitmap = zlib.decompress(base64.b64decode(metadata.removeprefix(METADATA_PREFIX)))
    except (ValueError, zlib.error):
        return set()
    return {
        base + 1 + index * 8 + bit
        for index, byte in enumerate(bitmap)
        for bit in range(8)
        if byte >> bit & 1
    }


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
        self._skip: set[int] = set()  # finished by an earlier owner: not processed again
        self._version = 0
        self._committed: int | None = None  # version of the last commit
        self._running = 0
        self._blocked: dict[int, tuple[float, str]] = {}  # offset -> (since, why)
        self.stopped = False
        self.closed = False

    def skip(self, offsets: Iterable[int]) -> None:
        """Offsets an earlier owner finished (from the commit's metadata)."""
        with self._lock:
            self._skip.update(offsets)

    def add(self, offset: int) -> bool:
        """Record that ``offset`` was read; False if it was finished already (skipped)."""
        with self._lock:
            if self._order and offset <= self._order[-1]:
                raise ValueError(f"{self.partition}: offset {offset} read out of order")
            self._order.append(offset)
            if offset not in self._skip:
                return True
            self._skip.discard(offset)
            self._finished.add(offset)
            self._advance()
            return False

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
            self._advance()

    def _advance(self) -> None:
        self._version += 1
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

    def commit_point(self) -> CommitPoint | None:
        """The offset to commit now with its metadata, or ``None`` if nothing was read."""
        with self._lock:
            point = self._order[0] if self._order else self._watermark
            if point is None:
                return None
            return CommitPoint(point, encode_finished(point, self._finished), self._version)

    def uncommitted(self) -> CommitPoint | None:
        """``commit_point()`` if anything finished since the last ``mark_committed``."""
        point = self.commit_point()
        with self._lock:
            return None if point is None or point.version == self._committed else point

    def mark_committed(self, point: CommitPoint | None) -> None:
        """Remember what was committed (``None``: forget, so it is committed again)."""
        with self._lock:
            self._committed = None if point is None else point.version

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
