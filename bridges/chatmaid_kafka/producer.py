"""One idempotent ``KafkaProducer`` (acks=all) for results, correlations and dead letters.

``send(records, on_done)`` calls ``on_done(None)`` once Kafka acknowledged every
record, or ``on_done(error)`` with the first failure; it never blocks on the network
(callbacks run on the producer's IO thread). ``publish(records)`` is the asyncio form.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError
from kafka.producer import KafkaProducer

from .records import OutgoingRecord, fit_record

logger = logging.getLogger("chatmaid_kafka.producer")

Done = Callable[[BaseException | None], None]

#: The consume path's producer linger (ms), measured in benchmarks/bench_bridge_throughput
#: near the limit (``--linger``): 5 ms gave 0.53-0.56 of raw httpx, 25 ms 0.59-0.63, 50
#: and 100 no more.
CONSUME_LINGER_MS = 25

#: The linger of a process that also answers webhooks (``run``): each answer waits for it.
SHARED_LINGER_MS = 5


def default_linger_ms(*, consume: bool, receive: bool) -> int:
    """The producer's linger unless told: 0 when every record is a webhook's answer."""
    if not consume:
        return 0
    return SHARED_LINGER_MS if receive else CONSUME_LINGER_MS


class PublishError(RuntimeError):
    """Kafka did not acknowledge a record."""


def too_large(error: BaseException) -> bool:
    """The broker refused a record as too large (the topic's ``max.message.bytes``)."""
    return isinstance(error, MessageSizeTooLargeError | RecordListTooLargeError)


class Publisher:
    """Produces records with acks=all; wraps one ``KafkaProducer``."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    @classmethod
    def connect(
        cls, kafka_options: dict[str, Any], *, linger_ms: int = 0, **overrides: Any
    ) -> Publisher:
        """A publisher on a new producer: idempotent, acks=all, no metrics.

        ``linger_ms``: how long a new batch waits for more records. 0 suits webhook
        answers, which wait for the ack (records are batched anyway while earlier ones
        are in flight); the consume path, where only the commit waits, gives
        ``CONSUME_LINGER_MS``: fewer, larger produce requests, a fraction of the network
        thread's and the broker's work per record, and fewer wakeups of that thread
        taking the GIL from the sends. kafka-python's own metrics (nobody reads the
        producer's) cost its network thread 13% of its time.
        """
        options = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "max_block_ms": 10_000,
            "metrics_enabled": False,
            "client_id": "chatmaid-bridge",
            **kafka_options,
            **overrides,
        }
        return cls(KafkaProducer(**options))

    def warm_up(self, topics: Sequence[str]) -> None:
        """Fetch metadata of ``topics`` now (waiting up to max_block_ms), so that later
        sends never block the event loop waiting for it."""
        for topic in topics:
            try:
                self._producer.partitions_for(topic)
            except KafkaError as exc:
                raise PublishError(f"no metadata for topic {topic!r}: {exc}") from exc

    def send(
        self,
        records: Sequence[OutgoingRecord],
        on_done: Done,
        *,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Produce ``records``; ``on_done`` is called once, when all are acked or one failed.

        Nothing is produced (and ``on_done`` never called) if ``wanted()`` is false: the
        event's partition is no longer ours.
        """
        if wanted is not None and not wanted():
            return
        if not records:
            on_done(None)
            return
        waiter = _AllAcked(len(records), on_done)
        for record in records:
            try:
                future = self._produce(record)
            except KafkaError as exc:
                waiter.failed(exc)
                return
            future.add_callback(waiter.acked)
            future.add_errback(waiter.failed)

    def _produce(self, record: OutgoingRecord) -> Any:
        try:
            return self._producer.send(
                record.topic, key=record.key, value=record.value, headers=record.headers
            )
        except MessageSizeTooLargeError as exc:  # over max_request_size: never producible
            fitted = fit_record(record)
            logger.warning("a %d-byte record for %s is too large (%s); producing it cut to "
                           "%d bytes", len(record.value or b""), record.topic, exc,
                           len(fitted.value or b""))  # fmt: skip
            return self._producer.send(
                fitted.topic, key=fitted.key, value=fitted.value, headers=fitted.headers
            )

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Produce ``records`` and wait for their acks; raises ``PublishError``."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, done, error)

        self.send(records, settle)
        await done

    def close(self, timeout: float = 10.0) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=timeout)


class _AllAcked:
    """Counts acks of one batch; reports the outcome once."""

    def __init__(self, count: int, on_done: Done) -> None:
        self._remaining = count
        self._on_done: Done | None = on_done
        self._lock = threading.Lock()

    def acked(self, _metadata: object) -> None:
        with self._lock:
            self._remaining -= 1
            report = self._on_done if self._remaining == 0 else None
            if report is not None:
                self._on_done = None
        if report is not None:
            report(None)

    def failed(self, error: BaseException) -> None:
        with self._lock:
            report, self._on_done = self._on_done, None
        if report is not None:
            report(error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(PublishError(f"Kafka did not acknowledge: {error}"))
