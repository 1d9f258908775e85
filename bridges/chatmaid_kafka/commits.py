"""How the notify consumer commits its progress: offset commits, or transactions.

``OffsetCommits`` (at-least-once) commits each watermark that moved asynchronously,
awaits one commit at a revocation and makes the last one synchronously. With
``--exactly-once``, ``TransactionCommits`` commits the open transaction with the
offsets of every owned partition, since it may hold records of any of them; a failed
commit or an abort makes the consumer read again from the last commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from .offsets import CommitPoint, OffsetBook, OffsetTracker, PartitionId
from .transactions import Offsets, TransactionFailed

logger = logging.getLogger("chatmaid_kafka.consumer")


class Commits(Protocol):
    """What the consumer calls; ``trackers``: partitions it owns, or lets go."""

    def moved(self, trackers: list[OffsetTracker]) -> None:
        """Commit the watermarks that moved (the consumer paces the calls)."""

    def final(self, trackers: list[OffsetTracker]) -> None:
        """The last commit before leaving the group."""

    async def revoked(self, revoked: list[OffsetTracker], owned: list[OffsetTracker]) -> None:
        """Commit what finished before ``revoked`` go to another member."""

    def lost(self) -> None:
        """Partitions went without a chance to commit."""


class Transactions(Protocol):
    """The open transaction (``transactions.TransactionalPublisher``)."""

    def commit(
        self,
        offsets: Callable[[], Offsets],
        group_metadata: Any,
        *,
        on_abort: Callable[[], None],
    ) -> None: ...

    def abort(self, *, on_abort: Callable[[], None]) -> None: ...


class OffsetCommits:
    """At-least-once: the consumer group's offsets, committed by the consumer."""

    def __init__(self, consumer: Any, book: OffsetBook) -> None:
        self._consumer = consumer
        self._book = book

    def moved(self, trackers: list[OffsetTracker]) -> None:
        offsets = {}
        for tracker in trackers:
            point = tracker.uncommitted()
            if point is not None:
                offsets[TopicPartition(*tracker.partition)] = _offset(point)
                tracker.mark_committed(point)
        if offsets:
            self._consumer.commit_async(offsets, callback=self._committed)

    def final(self, trackers: list[OffsetTracker]) -> None:
        offsets = _commit_points(trackers)
        if not offsets:
            return
        try:
            self._consumer.commit(offsets)
        except KafkaError as exc:
            logger.warning("final commit failed (unfinished events are read again): %s", exc)

    async def revoked(self, revoked: list[OffsetTracker], owned: list[OffsetTracker]) -> None:
        offsets = _commit_points(revoked)
        if not offsets:
            return
        try:
            await self._consumer.commit_async(offsets)
        except KafkaError as exc:
            logger.warning("commit at revocation failed: %s", exc)

    def lost(self) -> None:
        """Nothing to undo: the next owner reads from the last commit."""

    def _committed(self, offsets: dict[Any, Any], response: object) -> None:
        if isinstance(response, BaseException):
            logger.warning("commit failed (it is retried): %s", response)
            for tracker in self._book.trackers(PartitionId(*tp) for tp in offsets):
                tracker.mark_committed(None)
            return
        logger.debug("committed %s", {tp.partition: o.offset for tp, o in offsets.items()})


class TransactionCommits:
    """Exactly-once: offsets committed inside the transaction that holds the outcomes.

    ``on_failure``: a commit failed (read again from the last commit); ``on_abort``: the
    transaction was aborted (no outcome of the current progress may be produced)."""

    def __init__(
        self,
        consumer: Any,
        transactions: Transactions,
        *,
        on_failure: Callable[[], None],
        on_abort: Callable[[], None],
    ) -> None:
        self._consumer = consumer
        self._tx = transactions
        self._on_failure = on_failure
        self._on_abort = on_abort

    def moved(self, trackers: list[OffsetTracker]) -> None:
        if any(tracker.uncommitted() is not None for tracker in trackers):
            self._commit(trackers)

    def final(self, trackers: list[OffsetTracker]) -> None:
        self._commit(trackers)

    async def revoked(self, revoked: list[OffsetTracker], owned: list[OffsetTracker]) -> None:
        self._commit(owned)  # the transaction holds records of every partition

    def lost(self) -> None:
        self._tx.abort(on_abort=self._on_abort)  # it may hold the lost partitions' records

    def _commit(self, trackers: list[OffsetTracker]) -> None:
        points: dict[OffsetTracker, CommitPoint] = {}

        def offsets() -> dict[TopicPartition, OffsetAndMetadata]:
            points.update((t, p) for t in trackers if (p := t.commit_point()) is not None)
            return {TopicPartition(*t.partition): _offset(p) for t, p in points.items()}

        try:
            self._tx.commit(offsets, self._consumer.group_metadata(), on_abort=self._on_abort)
        except TransactionFailed as exc:
            logger.warning("%s; reading again from the last commit", exc)
            self._on_failure()
            return
        for tracker, point in points.items():
            tracker.mark_committed(point)


def _commit_points(trackers: list[OffsetTracker]) -> dict[TopicPartition, OffsetAndMetadata]:
    return {
        TopicPartition(*tracker.partition): _offset(point)
        for tracker in trackers
        if (point := tracker.commit_point()) is not None
    }


def _offset(point: CommitPoint) -> OffsetAndMetadata:
    return OffsetAndMetadata(point.offset, point.metadata, -1)
