"""The committable watermark: contiguous finished offsets per partition."""

from __future__ import annotations

import threading

import pytest

from chatmaid_kafka.offsets import (
    MAX_METADATA_BYTES,
    OffsetBook,
    OffsetTracker,
    PartitionId,
    decode_finished,
    encode_finished,
)

P0 = PartitionId("notify", 0)


def started(offsets: list[int]) -> OffsetTracker:
    tracker = OffsetTracker(P0)
    for offset in offsets:
        tracker.add(offset)
        assert tracker.begin()
    return tracker


def test_nothing_read_means_nothing_to_commit() -> None:
    tracker = OffsetTracker(P0)
    assert tracker.committable() is None
    assert tracker.pending == 0


def test_the_watermark_waits_for_the_first_unfinished_offset() -> None:
    tracker = started([10, 11, 12, 13])
    assert tracker.committable() == 10
    tracker.finish(12)
    tracker.finish(11)
    assert tracker.committable() == 10  # 10 still running
    tracker.finish(10)
    assert tracker.committable() == 13
    tracker.finish(13)
    assert tracker.committable() == 14
    assert tracker.pending == 0
    assert tracker.running == 0


def test_gaps_in_offsets_do_not_block_the_watermark() -> None:
    tracker = started([3, 7, 20])  # compacted topic or transaction markers
    tracker.finish(3)
    assert tracker.committable() == 7
    tracker.finish(20)
    tracker.finish(7)
    assert tracker.committable() == 21


def test_uncommitted_reports_only_movement() -> None:
    tracker = started([0, 1])
    first = tracker.uncommitted()
    assert first is not None
    assert first.offset == 0
    tracker.mark_committed(first)
    assert tracker.uncommitted() is None
    tracker.finish(0)
    moved = tracker.uncommitted()
    assert moved is not None
    assert moved.offset == 1
    tracker.mark_committed(None)  # a failed commit is tried again
    assert tracker.uncommitted() == moved


def test_commits_carry_the_finished_offsets_above_the_watermark() -> None:
    tracker = started(list(range(100, 110)))
    for offset in (102, 103, 107):
        tracker.finish(offset)
    point = tracker.uncommitted()
    assert point is not None
    assert point.offset == 100  # 100 still running
    assert decode_finished(point.offset, point.metadata) == {102, 103, 107}
    tracker.mark_committed(point)
    tracker.finish(105)  # the watermark did not move, the metadata did: commit again
    again = tracker.uncommitted()
    assert again is not None
    assert (again.offset, decode_finished(again.offset, again.metadata)) == (
        100,
        {102, 103, 105, 107},
    )


def test_a_new_owner_skips_what_the_commit_says_is_finished() -> None:
    metadata = encode_finished(100, {102, 103, 107})
    tracker = OffsetTracker(P0)
    tracker.skip(decode_finished(100, metadata))
    processed = [offset for offset in range(100, 109) if tracker.add(offset)]
    assert processed == [100, 101, 104, 105, 106, 108]
    for offset in processed:
        assert tracker.begin()
        tracker.finish(offset)
    assert tracker.committable() == 109
    assert tracker.pending == 0


@pytest.mark.parametrize("metadata", [None, "", "something else", "cm1:not base64!", "cm1:AAAA"])
def test_unknown_metadata_skips_nothing(metadata: str | None) -> None:
    assert decode_finished(0, metadata) == set()


def test_metadata_stays_within_the_brokers_limit() -> None:
    scattered = set(range(1, 2_000_000, 7))  # compresses badly
    metadata = encode_finished(0, scattered)
    assert 0 < len(metadata) <= MAX_METADATA_BYTES
    kept = decode_finished(0, metadata)
    assert kept
    assert kept <= scattered
    assert min(kept) == 1  # the oldest are kept: they are the next to be read again


def test_offsets_must_arrive_in_order() -> None:
    tracker = started([5])
    with pytest.raises(ValueError, match="out of order"):
        tracker.add(5)


def test_a_stopped_tracker_starts_nothing_but_still_counts_completions() -> None:
    tracker = started([0])
    tracker.add(1)
    tracker.stop()
    assert not tracker.begin()
    tracker.finish(0)
    assert tracker.committable() == 1
    assert tracker.running == 0


def test_a_closed_tracker_ignores_late_completions() -> None:
    tracker = started([0])
    tracker.close()
    tracker.finish(0)
    assert tracker.committable() == 0


def test_give_up_leaves_the_offset_unfinished() -> None:
    tracker = started([0])
    tracker.give_up()
    assert tracker.running == 0
    assert tracker.pending == 1
    assert tracker.committable() == 0


def test_completions_from_many_threads() -> None:
    tracker = started(list(range(2000)))

    def finish(offsets: range) -> None:
        for offset in offsets:
            tracker.finish(offset)

    threads = [threading.Thread(target=finish, args=(range(i, 2000, 4),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracker.committable() == 2000
    assert tracker.pending == 0


def test_the_book_keeps_trackers_of_the_assignment() -> None:
    book = OffsetBook()
    p1 = PartitionId("notify", 1)
    book.assign([P0, p1])
    first = book.get(P0)
    assert first is not None
    book.assign([P0])  # kept partitions keep their tracker
    assert book.get(P0) is first
    first.add(0)
    assert book.pending() == 1
    assert book.pending([p1]) == 0
    released = book.release([P0])
    assert released == [first]
    assert first.closed
    assert book.get(P0) is None
    assert [t.partition for t in book.trackers()] == [p1]
