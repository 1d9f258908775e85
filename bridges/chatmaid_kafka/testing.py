"""Helpers for tests, benchmarks and demos of pipelines built on the bridge.

``TopicSet`` names one run's topics and consumer group (unique per run), creates and
deletes them, and gives the ``chatmaid-bridge`` flags that point a bridge at them;
``TopicReader`` reads a topic from its beginning; ``listening`` tells whether a broker
answers at a bootstrap address.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.structs import TopicPartition

Record = Any  # kafka-python's ConsumerRecord (untyped)


def listening(bootstrap: str) -> bool:
    """True if something accepts TCP connections at the first bootstrap server."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TopicSet:
    """One run's notify, results, dead-letter and correlation topics and consumer group."""

    bootstrap: str
    prefix: str = "test"
    partitions: int = 4
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def name(self, kind: str) -> str:
        """``<prefix>-<kind>-<suffix>``."""
        return f"{self.prefix}-{kind}-{self.suffix}"

    @property
    def notify(self) -> str:
        return self.name("notify")

    @property
    def results(self) -> str:
        return self.name("results")

    @property
    def dlq(self) -> str:
        return self.name("dlq")

    @property
    def correlation(self) -> str:
        return self.name("correlation")

    @property
    def group(self) -> str:
        return self.name("group")

    def all(self) -> list[str]:
        """The four topic names."""
        return [self.notify, self.results, self.dlq, self.correlation]

    def flags(self, command: str = "run") -> list[str]:
        """The bridge flags naming these topics (and the group, when ``command`` consumes)."""
        group = [] if command == "receive" else ["--group-id", self.group]
        return [
            *group,
            "--bootstrap-servers",
            self.bootstrap,
            "--notify-topic",
            self.notify,
            "--results-topic",
            self.results,
            "--dlq-topic",
            self.dlq,
            "--correlation-topic",
            self.correlation,
            "--topic-partitions",
            str(self.partitions),
        ]

    def create(self, configs: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Create every topic, with ``configs`` by topic name (the bridge would create
        them too, but producers may come first)."""
        by_topic = configs or {}
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics(
                {
                    name: {
                        "num_partitions": self.partitions,
                        "replication_factor": 1,
                        "configs": dict(by_topic.get(name, {})),
                    }
                    for name in self.all()
                },
                wait_for_metadata=True,
            )
        finally:
            admin.close()

    def delete(self) -> None:
        """Delete those of the topics that exist."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            existing = set(admin.list_topics())
            doomed = [name for name in self.all() if name in existing]
            if doomed:
                admin.delete_topics(doomed)
        finally:
            admin.close()


class TopicReader:
    """Reads a whole topic from the beginning, accumulating ``records`` as it goes
    (``read_committed``: only records of committed transactions)."""

    def __init__(self, bootstrap: str, topic: str, *, read_committed: bool = False) -> None:
        self.records: list[Record] = []
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            isolation_level="read_committed" if read_committed else "read_uncommitted",
        )
        partitions = self._consumer.partitions_for_topic(topic) or set()
        self._consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        self._consumer.seek_to_beginning()

    def poll(self, timeout: float = 0.2) -> list[Record]:
        """Read what arrived; return everything read so far."""
        for batch in self._consumer.poll(timeout_ms=int(timeout * 1000)).values():
            self.records.extend(batch)
        return self.records

    def wait_for(
        self, predicate: Callable[[list[Record]], bool], timeout: float, what: str = "records"
    ) -> list[Record]:
        """Read until ``predicate(records)`` holds; ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not predicate(self.poll()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        return self.records

    def settle(self, quiet: float = 1.0) -> list[Record]:
        """Read until nothing new arrives for ``quiet`` seconds."""
        while True:
            before = len(self.records)
            self.poll(quiet)
            if len(self.records) == before:
                return self.records

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
