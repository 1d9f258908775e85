"""The consumer's two ways of committing: group offsets, or inside the transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from chatmaid_kafka.commits import OffsetCommits, TransactionCommits
from chatmaid_kafka.offsets import OffsetBook, OffsetTracker, PartitionId
from chatmaid_kafka.transactions import TransactionFailed

P0, P1 = PartitionId("notify", 0), PartitionId("notify", 1)


def finished(book: OffsetBook, partition: PartitionId, *offsets: int) -> OffsetTracker:
    """The partition's tracker with ``offsets`` read and finished."""
    tracker = book.get(partition)
    assert tracker is not None
    for offset in offsets:
        tracker.add(offset)
        tracker.finish(offset)
    return tracker


class Acknowledged:
    """What kafka-python's commit_async returns, already done: awaitable, or ignored."""

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


class FakeConsumer:
    def __init__(self, *, fail_sync: bool = False) -> None:
        self.async_commits: list[tuple[dict[Any, Any], Callable[..., None] | None]] = []
        self.sync_commits: list[dict[Any, Any]] = []
        self._fail_sync = fail_sync

    def commit_async(self, offsets: dict[Any, Any], callback: Any = None) -> Acknowledged:
        self.async_commits.append((offsets, callback))
        return Acknowledged()

    def commit(self, offsets: dict[Any, Any]) -> None:
        if self._fail_sync:
            raise KafkaError("coordinator gone")
        self.sync_commits.append(offsets)

    def group_metadata(self) -> str:
        return "group-metadata"


class FakeTransactions:
    def __init__(self, *, fail: bool = False) -> None:
        self.committed: list[dict[TopicPartition, Any]] = []
        self.aborted = 0
        self._fail = fail

    def commit(self, offsets: Callable[[], Any], group_metadata: Any, *, on_abort: Any) -> None:
        assert group_metadata == "group-metadata"
        if self._fail:
            on_abort()
            raise TransactionFailed("the transaction was aborted")
        self.committed.append(offsets())

    def abort(self, *, on_abort: Callable[[], None]) -> None:
        self.aborted += 1
        on_abort()


def book_of(*partitions: PartitionId) -> OffsetBook:
    book = OffsetBook()
    book.assign(partitions)
    return book


def test_offset_commits_send_each_moved_watermark_once() -> None:
    book, consumer = book_of(P0, P1), FakeConsumer()
    commits = OffsetCommits(consumer, book)
    finished(book, P0, 0, 1, 2)
    commits.moved(book.trackers())
    commits.moved(book.trackers())  # nothing moved since
    assert [{tp: o.offset for tp, o in c.items()} for c, _ in consumer.async_commits] == [
        {TopicPartition("notify", 0): 3}
    ]


def test_a_failed_async_commit_is_sent_again() -> None:
    book, consumer = book_of(P0), FakeConsumer()
    commits = OffsetCommits(consumer, book)
    finished(book, P0, 0)
    commits.moved(book.trackers())
    offsets, callback = consumer.async_commits[0]
    assert callback is not None
    callback(offsets, KafkaError("rebalancing"))
    commits.moved(book.trackers())
    assert len(consumer.async_commits) == 2
    assert consumer.async_commits[1][0] == offsets


def test_a_failed_final_commit_is_logged_not_raised(caplog: Any) -> None:
    book = book_of(P0)
    finished(book, P0, 0)
    OffsetCommits(FakeConsumer(fail_sync=True), book).final(book.trackers())
    assert "final commit failed (unfinished events are read again)" in caplog.text


def test_offset_commits_at_revocation_cover_only_the_revoked_partitions() -> None:
    book, consumer = book_of(P0, P1), FakeConsumer()
    finished(book, P0, 0)
    revoked = [finished(book, P1, 0, 1)]

    async def revoke() -> None:
        await OffsetCommits(consumer, book).revoked(revoked, book.trackers())

    asyncio.run(revoke())
    (offsets, _), *_ = consumer.async_commits
    assert {tp.partition: o.offset for tp, o in offsets.items()} == {1: 2}


def test_transaction_commits_at_revocation_cover_every_owned_partition() -> None:
    book, tx = book_of(P0, P1), FakeTransactions()
    commits = TransactionCommits(
        FakeConsumer(), tx, on_failure=lambda: None, on_abort=lambda: None
    )  # fmt: skip
    finished(book, P0, 0)
    revoked = [finished(book, P1, 0, 1)]
    asyncio.run(commits.revoked(revoked, book.trackers()))
    assert [{tp.partition: o.offset for tp, o in c.items()} for c in tx.committed] == [{0: 1, 1: 2}]
    commits.moved(book.trackers())  # committed: nothing uncommitted is left
    assert len(tx.committed) == 1


def test_a_failed_transaction_asks_for_a_rewind_and_marks_nothing_committed() -> None:
    book, tx = book_of(P0), FakeTransactions(fail=True)
    events: list[str] = []
    commits = TransactionCommits(
        FakeConsumer(),
        tx,
        on_failure=lambda: events.append("rewind"),
        on_abort=lambda: events.append("abort"),
    )
    tracker = finished(book, P0, 0)
    commits.moved(book.trackers())
    assert events == ["abort", "rewind"]
    assert tracker.uncommitted() is not None


def test_lost_partitions_abort_the_open_transaction() -> None:
    tx, events = FakeTransactions(), []
    commits = TransactionCommits(
        FakeConsumer(), tx, on_failure=lambda: None, on_abort=lambda: events.append("abort")
    )
    commits.lost()
    assert (tx.aborted, events) == (1, ["abort"])
