"""Round trip through the dev broker started by ``scripts/kafka.sh up``.

Needs kafka-python and a broker at ``KAFKA_BOOTSTRAP`` (default 127.0.0.1:9092);
skips otherwise.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

kafka = pytest.importorskip("kafka")

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def _listening(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.integration
def test_produce_and_consume_round_trip() -> None:
    if not _listening(BOOTSTRAP):
        pytest.skip(f"no Kafka broker at {BOOTSTRAP} (start one with: scripts/kafka.sh up)")

    topic = f"kafka-sh-test-{uuid.uuid4().hex[:12]}"
    admin = kafka.KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.create_topics(
            {topic: {"num_partitions": 2, "replication_factor": 1}}, wait_for_metadata=True
        )
        assert len(admin.describe_topics([topic])[0]["partitions"]) == 2
        sent = {f"value-{i}".encode() for i in range(10)}
        producer = kafka.KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        try:
            for i, value in enumerate(sorted(sent)):
                producer.send(topic, key=str(i).encode(), value=value).get(timeout=30)
        finally:
            producer.close()

        consumer = kafka.KafkaConsumer(
            topic,
            bootstrap_servers=BOOTSTRAP,
            group_id=f"{topic}-group",
            auto_offset_reset="earliest",
            consumer_timeout_ms=20_000,  # stop iterating if nothing arrives for 20 s
        )
        received: list[bytes] = []
        try:
            for record in consumer:
                received.append(record.value)
                if len(received) == len(sent):
                    break
        finally:
            consumer.close()

        assert sorted(received) == sorted(sent)
    finally:
        admin.delete_topics([topic])
        admin.close()
