"""The receiver's coalescing: the records of one loop pass are one publish."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chatmaid_kafka.coalesce import Coalescer
from chatmaid_kafka.producer import PublishError
from chatmaid_kafka.records import OutgoingRecord


class Sink:
    """Records each publish call; fails them while ``fail`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[bytes | None]] = []
        self.fail = False

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        self.batches.append([r.value for r in records])
        await asyncio.sleep(0)  # the ack comes later, as Kafka's does
        if self.fail:
            raise PublishError("Kafka did not acknowledge: down")


def record(value: bytes) -> OutgoingRecord:
    return OutgoingRecord("results", b"key", value)


async def test_the_records_of_one_pass_are_one_publish() -> None:
    sink = Sink()
    batches = Coalescer(sink)
    first = [batches.submit(record(b"%d" % i)) for i in range(3)]
    await asyncio.sleep(0)  # the pass ends: the flush runs
    later = batches.submit(record(b"later"))
    await asyncio.gather(*first, later)
    assert sink.batches == [[b"0", b"1", b"2"], [b"later"]]


async def test_a_failed_publish_fails_every_record_of_its_batch() -> None:
    sink = Sink()
    sink.fail = True
    batches = Coalescer(sink)
    acks = [batches.submit(record(b"%d" % i)) for i in range(2)]
    outcomes = await asyncio.gather(*acks, return_exceptions=True)
    assert [type(o) for o in outcomes] == [PublishError, PublishError]
    sink.fail = False
    await batches.submit(record(b"retry"))  # the next batch is unaffected
    assert sink.batches == [[b"0", b"1"], [b"retry"]]


async def test_a_record_whose_waiter_gave_up_does_not_break_the_batch() -> None:
    batches = Coalescer(Sink())
    abandoned, kept = batches.submit(record(b"a")), batches.submit(record(b"b"))
    abandoned.cancel()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await abandoned
