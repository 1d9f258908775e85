"""Which partitions of the notify topic have work, as the whole consumer group sees it.

A partition has work while the group's committed offset is below its log end: events
not yet sent, or sent and not yet committed. An admin client reads both for every
partition of the topic once an ``interval``, on a thread of its own, so the poll loop
only reads the latest snapshot. Every process of the group reads the same two numbers
from the broker, so their views agree within an interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import KafkaError

from .settings import BridgeSettings

logger = logging.getLogger("chatmaid_kafka.demand")

AdminFactory = Callable[[], Any]


class GroupDemand:
    """The partitions (numbers) of the notify topic with uncommitted events, or ``None``
    before the first reading and while the broker cannot be read."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        interval: float = 1.0,
        admin_factory: AdminFactory | None = None,
    ) -> None:
        self._topic = settings.notify_topic
        self._group = settings.group_id
        self._interval = interval
        self._admin_factory = admin_factory or (
            lambda: KafkaAdminClient(client_id="chatmaid-bridge-demand", **settings.kafka_options())
        )
        self._busy: frozenset[int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="group-demand", daemon=True)

    def busy(self) -> frozenset[int] | None:
        """The latest reading (any thread)."""
        return self._busy

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        admin = None
        while not self._stop.is_set():
            try:
                admin = admin or self._admin_factory()
                self._busy = self.read(admin)
            except Exception as exc:  # the broker away, or an answer without a partition
                level = logging.DEBUG if isinstance(exc, KafkaError) else logging.WARNING
                logger.log(level, "group demand unread (shares by partitions): %r", exc)
                self._busy = None
                if admin is not None:
                    admin.close()
                    admin = None
            self._stop.wait(self._interval)
        if admin is not None:
            admin.close()

    def read(self, admin: Any) -> frozenset[int]:
        """One reading: the partitions whose committed offset is below the log end (a
        partition the group never committed counts from its log start)."""
        (topic,) = admin.describe_topics([self._topic])
        numbers = sorted(p["partition_index"] for p in topic["partitions"])
        partitions = [TopicPartition(self._topic, number) for number in numbers]
        ends = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST))
        committed = admin.list_group_offsets({self._group: partitions}).get(self._group, {})
        starts = {tp: c.offset for tp, c in committed.items() if c is not None and c.offset >= 0}
        never = [tp for tp in partitions if tp not in starts]
        if never:
            earliest = admin.list_partition_offsets(dict.fromkeys(never, OffsetSpec.EARLIEST))
            starts.update({tp: earliest[tp].offset for tp in never})
        return frozenset(tp.partition for tp in partitions if ends[tp].offset > starts[tp])
