"""Kafka itself going away: a broker of this module's own is stopped and started.

- The consumer loses nothing when the broker stops and starts mid-run.
- The receiver answers 503 while Kafka cannot acknowledge, and the sandbox's retry
  of the same delivery succeeds once it can (published exactly once).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka.consumer import KafkaConsumer
from kafka.structs import TopicPartition

from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    WEBHOOK_SECRET,
    BridgeProcess,
    PrivateBroker,
    Topics,
    bridge_messages,
    notify_event,
    produce_events,
    start_receiver,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def committed(topics: Topics) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, group_id=topics.group)
    try:
        return {
            p: consumer.committed(TopicPartition(topics.notify, p))
            for p in range(topics.partitions)
        }
    finally:
        consumer.close()


def health(bridge: BridgeProcess) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{bridge.url}/healthz", timeout=5)
    return response.status_code, response.json()


def test_the_broker_stopped_and_started_twice_mid_run_loses_nothing(
    chatmaid_sandbox: Any,
    private_broker: PrivateBroker,
    private_topics: Topics,
    bridges: list[BridgeProcess],
    tmp_path: Path,
) -> None:
    sandbox, topics = chatmaid_sandbox, private_topics
    sandbox.admin.update_settings(rate_limit=0)
    sandbox.admin.inject_latency(0.05, path="/v1/messages/send")
    bridge = BridgeProcess(
        "consume",
        [*topics.flags(), "--requests-per-minute", "0", "--concurrency", "4"],
        sandbox=sandbox,
        log_dir=tmp_path,
    )
    bridges.append(bridge)
    bridge.start()
    batches = [[notify_event(topics.suffix, i) for i in range(b * 100, b * 100 + 100)]
               for b in range(3)]  # fmt: skip
    produce_events(topics.bootstrap, topics.notify, batches[0])
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 20, 60, "sends under way")

    def sent_of(batch: list[dict[str, Any]]) -> int:
        wanted = {event["to"] for event in batch}
        return sum(m["to"] in wanted for m in bridge_messages(sandbox.admin))

    resumed_after = []
    for batch in batches[1:]:
        private_broker.down()
        # Fetched events are still sent meanwhile; their results wait in the producer.
        wait_until(lambda: health(bridge)[0] == 503, 30, "/healthz not ready without Kafka")
        assert health(bridge)[1]["components"]["kafka"] is False
        time.sleep(5)
        assert bridge.process is not None
        assert bridge.process.poll() is None  # rides the outage out
        private_broker.up()
        up_at = time.monotonic()
        produce_events(topics.bootstrap, topics.notify, batch)
        wait_until(lambda b=batch: sent_of(b) > 0, 30, "sending again")  # type: ignore[misc]
        resumed_after.append(time.monotonic() - up_at)
        wait_until(lambda: health(bridge)[0] == 200, 30, "/healthz ready again")
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 300, 120, "every send")

    assert max(resumed_after) < 5, resumed_after
    first, second = batches[0], batches[1] + batches[2]
    messages = bridge_messages(sandbox.admin)
    assert len(messages) == 300
    assert len({m["idempotencyKey"] for m in messages}) == 300
    wanted = {e["eventId"] for e in first + second}
    with TopicReader(topics.bootstrap, topics.results) as results:
        results.wait_for(
            lambda r: {json.loads(x.value)["eventId"] for x in r} >= wanted,
            120,
            "every accepted record",
        )
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert dlq.settle(1.0) == []
    assert bridge.terminate() == 0
    # Everything was committed: the group would not read a single event again.
    with TopicReader(topics.bootstrap, topics.notify) as notify:
        ends: dict[int, int] = {}
        for record in notify.settle(1.0):
            ends[record.partition] = record.offset + 1
    assert committed(topics) == {p: ends.get(p) for p in range(topics.partitions)}


def test_kafka_down_at_webhook_time_answers_503_and_the_retry_publishes_once(
    chatmaid_sandbox: Any,
    private_broker: PrivateBroker,
    private_topics: Topics,
    bridges: list[BridgeProcess],
    tmp_path: Path,
) -> None:
    sandbox, topics = chatmaid_sandbox, private_topics
    # Retries 1.2 s, 6 s and 18 s after the first attempt.
    # Only what the docs show: the retry is recognised without a delivery-id header.
    sandbox.admin.update_settings(time_scale=0.02)
    receiver = start_receiver(
        bridges, sandbox, topics, tmp_path, "--publish-timeout", "1", "--correlation-wait", "0"
    )
    sandbox.admin.add_webhook(f"{receiver.url}/webhooks/chatmaid", WEBHOOK_SECRET)
    client = sandbox.client(requests_per_minute=None)

    before = client.send_message(from_phone=sandbox.phone_id, to="+15557012001", content="a")
    sandbox.admin.wait_for_deliveries(1, succeeded=True, timeout=10)

    private_broker.down()
    during = client.send_message(from_phone=sandbox.phone_id, to="+15557012002", content="b")
    refused = sandbox.admin.wait_for_deliveries(1, succeeded=False, timeout=15)[0]
    assert refused["statusCode"] == 503
    private_broker.up()

    def delivered() -> list[dict[str, Any]]:
        return [
            d
            for d in sandbox.admin.deliveries()
            if d["deliveryId"] == refused["deliveryId"] and d["succeeded"]
        ]

    wait_until(lambda: bool(delivered()), 60, "the retried delivery to succeed")
    assert delivered()[0]["attempt"] > 1
    with TopicReader(topics.bootstrap, topics.results) as results:
        records = results.wait_for(lambda r: len(r) >= 2, 60, "both results")
        outcomes = [json.loads(r.value) for r in results.settle(2.0)]
    assert len(records) == 2
    assert sorted(o["messageId"] for o in outcomes) == sorted([before.id, during.id])
    assert receiver.metric("chatmaid_bridge_webhooks_unavailable_total") >= 1
    assert receiver.terminate() == 0
