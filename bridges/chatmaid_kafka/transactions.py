"""Exactly once (``--exactly-once``): outcomes and offsets in one Kafka transaction.

The consumer's producer is transactional. Outcome records (accepted, correlation, dead
letters) are produced into the open transaction as events finish; every commit interval
the poll loop calls ``commit``: no record is produced meanwhile, every record of the
transaction is flushed (so the events they stand for count as finished), the
partitions' commit points are added to the transaction with the consumer's group
metadata (KIP-447: a member fenced by a rebalance cannot commit), and the transaction
commits. A consumer reading the results topic with ``isolation_level="read_committed"``
sees each record once, whatever crashes: a killed process's open transaction is
aborted (when a producer with its transactional ID starts, or after
``transaction_timeout_ms``), its offsets stay uncommitted, its events are read and sent
again (the idempotency key returns the original message) and their records written in
a later transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kafka.errors import KafkaError
from kafka.producer import KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from .producer import Done, Publisher
from .records import OutgoingRecord

logger = logging.getLogger("chatmaid_kafka.transactions")

#: How long an open transaction of a dead process may block read_committed readers.
TRANSACTION_TIMEOUT_MS = 10_000

Offsets = dict[TopicPartition, OffsetAndMetadata]


class TransactionFailed(RuntimeError):
    """The transaction was aborted: its records are gone and its offsets not committed."""


class TransactionalPublisher(Publisher):
    """A ``Publisher`` whose records go into the open transaction until ``commit``."""

    def __init__(self, producer: Any) -> None:
        super().__init__(producer)
        self._lock = threading.Lock()  # no record is produced while a commit runs

    @classmethod
    def connect_transactional(
        cls, kafka_options: dict[str, Any], transactional_id: str, *, linger_ms: int
    ) -> TransactionalPublisher:
        """A transactional producer, its earlier instance's open transaction aborted.

        ``linger_ms``: as for ``Publisher.connect``; a commit flushes, so it never waits
        for it."""
        producer = KafkaProducer(
            acks="all",
            enable_idempotence=True,
            transactional_id=transactional_id,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            linger_ms=linger_ms,
            max_block_ms=30_000,
            client_id="chatmaid-bridge",
            **kafka_options,
        )
        producer.init_transactions()
        producer.begin_transaction()
        return cls(producer)

    def send(
        self,
        records: Sequence[OutgoingRecord],
        on_done: Done,
        *,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Produce ``records`` into the open transaction (``on_done`` once acked);
        ``wanted`` is asked under the lock, so no record of an aborted partition slips
        into the next transaction."""
        with self._lock:
            super().send(records, on_done, wanted=wanted)

    def commit(
        self,
        offsets: Callable[[], Offsets],
        group_metadata: Any,
        *,
        on_abort: Callable[[], None],
    ) -> None:
        """Flush, add ``offsets()`` (computed after the flush) and commit.

        If anything goes wrong: abort, call ``on_abort`` (before the next transaction
        begins: the caller stops wanting the aborted records), raise ``TransactionFailed``;
        the caller must then read again from the last committed offsets.
        """
        with self._lock:
            try:
                self._producer.flush()
                points = offsets()
                if points:
                    self._producer.send_offsets_to_transaction(points, group_metadata)
                self._producer.commit_transaction()
            except KafkaError as exc:
                self._abort()
                on_abort()
                raise TransactionFailed(f"transaction aborted: {exc}") from exc
            finally:
                self._begin()

    def abort(self, *, on_abort: Callable[[], None]) -> None:
        """Abort the open transaction (its partitions were lost), call ``on_abort``,
        begin the next."""
        with self._lock:
            self._abort()
            on_abort()
            self._begin()

    def _abort(self) -> None:
        try:
            self._producer.abort_transaction()
        except KafkaError as exc:
            logger.warning("abort failed (the broker times the transaction out): %s", exc)

    def _begin(self) -> None:
        try:
            self._producer.begin_transaction()
        except KafkaError as exc:
            logger.warning("could not begin the next transaction: %s", exc)
