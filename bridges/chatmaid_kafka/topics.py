"""Creating the bridge's topics when they are missing."""

from __future__ import annotations

import logging
from contextlib import suppress

from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from .settings import BridgeSettings

logger = logging.getLogger("chatmaid_kafka.topics")

#: The correlation topic keeps the latest record per messageId, for a week.
CORRELATION_CONFIG = {"cleanup.policy": "compact,delete", "retention.ms": str(7 * 86_400_000)}


def ensure_topics(settings: BridgeSettings, names: list[str]) -> None:
    """Create those of ``names`` that do not exist (the correlation topic compacted)."""
    admin = KafkaAdminClient(client_id="chatmaid-bridge-admin", **settings.kafka_options())
    try:
        existing = set(admin.list_topics())
        missing = {
            name: {
                "num_partitions": settings.topic_partitions,
                "replication_factor": settings.replication_factor,
                "configs": CORRELATION_CONFIG if name == settings.correlation_topic else {},
            }
            for name in names
            if name not in existing
        }
        if not missing:
            return
        with suppress(TopicAlreadyExistsError):  # another bridge created one meanwhile
            admin.create_topics(missing, wait_for_metadata=True)
        logger.info("created topics %s", ", ".join(missing))
    finally:
        admin.close()
