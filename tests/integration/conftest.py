"""Fixtures the integration tests share: Kafka topics, bridge processes, a private broker."""

from tests.integration.kafka_helpers import (
    bridges,
    kafka_bootstrap,
    private_broker,
    private_topics,
    topics,
)

__all__ = ["bridges", "kafka_bootstrap", "private_broker", "private_topics", "topics"]
