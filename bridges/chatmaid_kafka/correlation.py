"""messageId -> the event that caused it, for labelling webhooks.

The consumer writes a correlation record per accepted send to a compacted topic (key:
messageId). A receiver, possibly on another host, tails that topic into a bounded
in-memory ``CorrelationIndex``. A webhook may beat its correlation record (the API can
call back before the bridge has even read its answer), so ``wait_for`` waits a bounded
time for an unknown messageId before the receiver publishes without it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from kafka.consumer import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from pydantic import ValidationError

from .brokers import connected
from .records import Correlation

logger = logging.getLogger("chatmaid_kafka.correlation")

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Correlation]"]
#: An entry as kept: a tuple of atoms (and a flat metadata dict) the garbage collector
#: stops tracking, where a model would add two tracked objects per message to every
#: full collection (100,000 of them: ~150 ms of pause).
_Entry = tuple[str | None, str | None, dict[str, Any] | None]


class CorrelationIndex:
    """A bounded map messageId -> ``Correlation``; the oldest entries go first. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._waiters: dict[str, list[_Waiter]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def put(self, message_id: str, correlation: Correlation) -> None:
        """Remember ``correlation`` and wake whoever waits for ``message_id``."""
        entry = (correlation.event_id, correlation.idempotency_key, correlation.metadata)
        with self._lock:
            self._entries[message_id] = entry
            self._entries.move_to_end(message_id)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
            waiters = self._waiters.pop(message_id, [])
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future, correlation)

    def get(self, message_id: str) -> Correlation | None:
        """The correlation of ``message_id``, if known."""
        with self._lock:
            entry = self._entries.get(message_id)
        return None if entry is None else _correlation(entry)

    async def wait_for(self, message_id: str, timeout: float) -> Correlation | None:
        """The correlation of ``message_id``, waiting up to ``timeout`` seconds for it."""
        loop = asyncio.get_running_loop()
        with self._lock:
            known = self._entries.get(message_id)
            if known is not None or timeout <= 0:
                return None if known is None else _correlation(known)
            future: asyncio.Future[Correlation] = loop.create_future()
            waiter = (loop, future)
            self._waiters.setdefault(message_id, []).append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            with self._lock:
                waiters = self._waiters.get(message_id)
                if waiters is not None and waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._waiters[message_id]


class CorrelationTail:
    """Reads the correlation topic from the beginning into an index, in a thread."""

    def __init__(self, kafka_options: dict[str, Any], topic: str, index: CorrelationIndex) -> None:
        self._topic = topic
        self._index = index
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The broker answers a fetch as soon as a record arrives; this only bounds
            # the idle ones (at 50 ms they cost an idle receiver 3% of a core).
            fetch_max_wait_ms=500,
            client_id="chatmaid-bridge-correlation",
            **kafka_options,
        )
        self._thread = threading.Thread(target=self._run, name="correlation-tail", daemon=True)
        self._kafka_ready = True

    def start(self) -> CorrelationTail:
        """Assign every partition of the topic and start tailing."""
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        if not partitions:
            raise RuntimeError(f"correlation topic {self._topic!r} has no partitions")
        self._consumer.assign([TopicPartition(self._topic, p) for p in sorted(partitions)])
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """True while tailing."""
        return self._thread.is_alive()

    @property
    def kafka_ready(self) -> bool:
        """False while the tail has no connection to any broker."""
        return self._kafka_ready

    def stop(self, timeout: float = 10.0) -> None:
        """Stop tailing and close the consumer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        checked = 0.0
        try:
            while not self._stop.is_set():
                try:
                    for batch in self._consumer.poll(timeout_ms=200).values():
                        for record in batch:
                            self._apply(record.key, record.value)
                except KafkaError as exc:  # the broker is away: ride it out
                    self._kafka_ready = False
                    logger.warning("Kafka unavailable (%s); tailing again in 1s", exc)
                    self._stop.wait(1.0)
                    continue
                if time.monotonic() - checked >= 1.0:
                    checked = time.monotonic()
                    self._kafka_ready = connected(self._consumer)
        finally:
            self._consumer.close()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        try:
            correlation = Correlation.model_validate_json(value)
        except ValidationError:
            logger.warning("skipping a malformed correlation record for %r", key)
            return
        self._index.put(key.decode(errors="replace"), correlation)


def _correlation(entry: _Entry) -> Correlation:
    event_id, idempotency_key, metadata = entry
    return Correlation.model_construct(
        event_id=event_id, idempotency_key=idempotency_key, metadata=metadata
    )


def _resolve(future: asyncio.Future[Correlation], correlation: Correlation) -> None:
    if not future.done():
        future.set_result(correlation)
