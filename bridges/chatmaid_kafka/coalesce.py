"""The records submitted during one pass of the event loop, published as one batch.

The receiver submits a webhook's record as soon as it is built. The first submission of
a pass schedules the flush with ``call_soon``, which runs after every callback already
due, so every webhook read in the same pass is in the batch. One flush is one
``publish``: one produce call, one answer back to the loop, and records that travel to
Kafka together, instead of one of each per webhook. Each submission's future resolves
when Kafka acknowledged the batch (acks=all), or fails with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from .records import OutgoingRecord


class RecordSink(Protocol):
    """Where records go (``producer.Publisher``); raises ``PublishError`` without an ack."""

    async def publish(self, records: Sequence[OutgoingRecord]) -> None: ...


class Coalescer:
    """Collects the records of one loop pass and publishes them together."""

    def __init__(self, sink: RecordSink) -> None:
        self._sink = sink
        self._records: list[OutgoingRecord] = []
        self._waiting: list[asyncio.Future[None]] = []

    def submit(self, record: OutgoingRecord) -> asyncio.Future[None]:
        """Queue ``record`` for this pass's batch; the future of its acknowledgement."""
        loop = asyncio.get_running_loop()
        if not self._records:
            loop.call_soon(self._flush)
        acked: asyncio.Future[None] = loop.create_future()
        self._records.append(record)
        self._waiting.append(acked)
        return acked

    def _flush(self) -> None:
        records, waiting = self._records, self._waiting
        self._records, self._waiting = [], []
        task = asyncio.ensure_future(self._sink.publish(records))
        task.add_done_callback(lambda done: _settle(waiting, done))


def _settle(waiting: list[asyncio.Future[None]], done: asyncio.Task[None]) -> None:
    error = None if done.cancelled() else done.exception()
    for acked in waiting:
        if acked.done():
            continue
        if done.cancelled():
            acked.cancel()
        elif error is not None:
            acked.set_exception(error)
        else:
            acked.set_result(None)
