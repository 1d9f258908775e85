"""Helpers for tests, benchmarks and demos of pipelines built on the bridge.

``TopicSet`` names one run's topics and consumer group (unique per run), creates and
deletes them, and gives the ``chatmaid-bridge`` flags that point a bridge at them;
``listening`` tells whether a broker answers at a bootstrap address.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from kafka.admin import KafkaAdminClient


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
