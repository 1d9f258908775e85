"""``chatmaid-bridge replay``: dead letters back to the notify topic, never sent twice.

Each dead letter is re-published with its original key, value and headers (the
``chatmaid.errors.*`` ones left out) plus ``chatmaid.replay.idempotency-key``: the key
its first sends used, so the bridge sends it with that key again and the API answers
with the original message if one was created. Replaying twice leaves one message.
The dead-letter topic is read from its start to the end it had when the replay began;
nothing is committed (it has no consumer group), so a replay is repeatable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from kafka.consumer import KafkaConsumer
from kafka.structs import TopicPartition

from .events import REPLAY_KEY_HEADER
from .producer import Publisher
from .records import ERROR_HEADER_PREFIX, OutgoingRecord, error_headers
from .settings import BridgeSettings

#: Seconds without a new dead letter before the read is declared done.
IDLE_SECONDS = 2.0


@dataclass
class ReplayReport:
    """What a replay read and did."""

    read: int = 0
    replayed: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        """Dead letters left out by the filters."""
        return self.read - self.replayed


def replay(
    settings: BridgeSettings,
    *,
    stages: Collection[str] = (),
    error_classes: Collection[str] = (),
    dry_run: bool = False,
) -> ReplayReport:
    """Re-publish the dead letters matching ``stages`` and ``error_classes`` (empty: any)."""
    report = ReplayReport()
    batch: list[OutgoingRecord] = []
    for headers, record in _dead_letters(settings):
        report.read += 1
        stage = headers.get("stage", "")
        if (stages and stage not in stages) or (
            error_classes and headers.get("class.name") not in error_classes
        ):
            continue
        report.replayed += 1
        report.by_stage[stage] = report.by_stage.get(stage, 0) + 1
        batch.append(_as_event(settings.notify_topic, headers, record))
    if batch and not dry_run:
        publisher = Publisher.connect(settings.kafka_options())
        try:
            asyncio.run(publisher.publish(batch))
        finally:
            publisher.close()
    return report


def _as_event(topic: str, errors: dict[str, str], letter: OutgoingRecord) -> OutgoingRecord:
    headers = [(k, v) for k, v in letter.headers if not k.startswith(ERROR_HEADER_PREFIX)]
    headers = [(k, v) for k, v in headers if k != REPLAY_KEY_HEADER]
    key = errors.get("idempotency.key")
    if key:
        headers.append((REPLAY_KEY_HEADER, key.encode()))
    return OutgoingRecord(topic, letter.key, letter.value, headers)


def _dead_letters(settings: BridgeSettings) -> list[tuple[dict[str, str], OutgoingRecord]]:
    """Every dead letter up to the topic's end when called, in partition order."""
    consumer = KafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        client_id="chatmaid-bridge-replay",
        **settings.kafka_options(),
    )
    try:
        numbers = consumer.partitions_for_topic(settings.dlq_topic) or set()
        partitions = [TopicPartition(settings.dlq_topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        letters: list[tuple[dict[str, str], OutgoingRecord]] = []
        idle_since = time.monotonic()
        while any(consumer.position(p) < ends[p] for p in partitions):
            fetched = consumer.poll(timeout_ms=500)
            if not fetched and time.monotonic() - idle_since > IDLE_SECONDS:
                break  # compacted or deleted records: the end offset is never read
            for partition, records in fetched.items():
                idle_since = time.monotonic()
                for r in records:
                    if r.offset < ends[partition]:
                        headers = list(r.headers or [])
                        record = OutgoingRecord(settings.dlq_topic, r.key, r.value, headers)
                        letters.append((error_headers(headers), record))
        return letters
    finally:
        consumer.close()
