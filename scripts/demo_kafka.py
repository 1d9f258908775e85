"""``make demo``, Kafka part: notify events in, WhatsApp sends out, results back on a topic.

``run_kafka_demo(sandbox_url, api_key, bootstrap)`` starts the bridge (consumer and
webhook receiver) against the sandbox and a Kafka broker, publishes a few sample
notify events (one of them invalid), waits until each has its outcome, prints the
sends, the dead letter and the results topic, then stops everything and deletes its
topics. Run alone, it starts its own sandbox::

    scripts/kafka.sh up && python scripts/demo_kafka.py
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.producer import KafkaProducer
from kafka.structs import TopicPartition

from chatmaid.sandbox import Admin, run_sandbox
from chatmaid_kafka.records import error_headers
from chatmaid_kafka.service import Bridge
from chatmaid_kafka.settings import BridgeSettings
from chatmaid_kafka.testing import listening

WEBHOOK_SECRET = "whsec_kafka_demo"  # noqa: S105 - the demo's own throwaway secret
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
TIMEOUT = 20.0


def sample_events(run: str) -> list[tuple[bytes, dict[str, Any] | str]]:
    """(key, event) pairs: three good events, one that fails delivery, one invalid."""
    return [
        (b"customer-17", {"eventId": f"order-7784-{run}", "to": "+15557654321",
                          "content": "Order 7784 confirmed", "metadata": {"orderId": 7784}}),
        (b"customer-17", {"eventId": f"order-7784-shipped-{run}", "to": "+15557654321",
                          "content": "Order 7784 shipped", "from": "+15551234567",
                          "metadata": {"orderId": 7784}}),
        (b"customer-42", {"eventId": f"kpi-alert-{run}", "to": "+15557654322",
                          "content": "Daily KPI dropped 20%", "metadata": {"kpi": "orders"}}),
        (b"customer-99", {"eventId": f"not-on-whatsapp-{run}", "to": "+15550000000",
                          "content": "Hello?"}),
        (b"customer-00", {"eventId": f"bad-number-{run}", "to": "555-0100",
                          "content": "never sent"}),
    ]  # fmt: skip


def run_kafka_demo(sandbox_url: str, api_key: str, bootstrap: str = BOOTSTRAP) -> None:
    """Run the bridge on the sandbox at ``sandbox_url`` and show what went through Kafka."""
    if not listening(bootstrap):
        print(f"Kafka bridge: skipped, no broker at {bootstrap} (start one: make kafka-up)")
        return
    run = uuid.uuid4().hex[:8]
    settings = BridgeSettings(
        api_key=api_key,
        webhook_secret=WEBHOOK_SECRET,
        base_url=sandbox_url,
        bootstrap_servers=bootstrap,
        notify_topic=f"demo.notify.{run}",
        results_topic=f"demo.results.{run}",
        dlq_topic=f"demo.dlq.{run}",
        correlation_topic=f"demo.correlation.{run}",
        group_id=f"demo-bridge-{run}",
        topic_partitions=2,
        port=0,
    )
    topics = [settings.notify_topic, settings.results_topic, settings.dlq_topic]
    print(f"Kafka bridge: consumer + webhook receiver on {bootstrap}, topics demo.*.{run}")
    # The bridge logs each dead letter as a warning; the demo prints them itself.
    quiet = logging.getLogger("chatmaid_kafka")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    bridge = Bridge(settings, consume=True, receive=True).start()
    admin = Admin(sandbox_url)
    webhook = admin.add_webhook(f"{bridge.url}{settings.webhook_path}", WEBHOOK_SECRET)
    try:
        events = sample_events(run)
        _publish(bootstrap, settings.notify_topic, events)
        print(f"  published {len(events)} notify events to {settings.notify_topic}:")
        for key, event in events:
            print(f"    {key.decode():<12} {json.dumps(event)}")
        good = [e for _, e in events if isinstance(e, dict) and e["to"].startswith("+")]
        results = _wait_for_results(bootstrap, settings.results_topic, len(good))
        dead = _read(bootstrap, settings.dlq_topic, until=1)
        order = [e["eventId"] for _, e in events if isinstance(e, dict)]
        results.sort(key=lambda r: (order.index(r["eventId"]), r["type"] != "message.accepted"))
        _show(admin, results, dead)
    finally:
        admin.remove_webhook(webhook["id"])
        admin.close()
        bridge.stop()
        quiet.setLevel(level)
        _delete(bootstrap, [*topics, settings.correlation_topic])
    print("  bridge stopped, demo topics deleted")


def _show(admin: Admin, results: list[dict[str, Any]], dead: list[Any]) -> None:
    print("  sent, as the sandbox holds them:")
    held = {m["id"]: m for m in admin.messages()}
    for message_id in dict.fromkeys(r["messageId"] for r in results):
        message = held[message_id]
        print(
            f"    {message['id']} {message['from']} -> {message['to']} "
            f"[{message['status']}] {message['content']!r}"
        )
    print("  dead-letter topic:")
    for record in dead:
        errors = error_headers(record.headers)
        print(f"    key {record.key!r} value {record.value!r}")
        print(f"    stage {errors['stage']}: {errors['exception.message']}")
    print("  results topic (keyed by messageId):")
    for result in results:
        print(
            f"    {result['type']:<17} {result['messageId']} {result['status']:<7} "
            f"eventId={result['eventId']} metadata={result['metadata']}"
        )


def _wait_for_results(bootstrap: str, topic: str, events: int) -> list[dict[str, Any]]:
    """Every result, once each event has its accepted record and its final outcome."""
    finals = {"message.sent", "message.failed"}
    deadline = time.monotonic() + TIMEOUT
    while True:
        results = [json.loads(r.value) for r in _read(bootstrap, topic)]
        accepted = {r["eventId"] for r in results if r["type"] == "message.accepted"}
        settled = {r["eventId"] for r in results if r["type"] in finals}
        if len(accepted) >= events and len(settled) >= events:
            return results
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every event settled in {TIMEOUT:g}s: {results}")
        time.sleep(0.2)


def _publish(bootstrap: str, topic: str, events: list[tuple[bytes, Any]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, event in events:
            producer.send(topic, key=key, value=json.dumps(event).encode())
        producer.flush(timeout=10)
    finally:
        producer.close()


def _read(bootstrap: str, topic: str, until: int = 0) -> list[Any]:
    """The records of ``topic`` from the start (waiting a little for ``until`` of them)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=500)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + TIMEOUT
        while True:
            records.extend(consumer)
            if len(records) >= until or time.monotonic() > deadline:
                return records
    finally:
        consumer.close()


def _delete(bootstrap: str, topics: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([t for t in topics if t in set(admin.list_topics())])
    finally:
        admin.close()


if __name__ == "__main__":
    with run_sandbox() as sandbox:
        run_kafka_demo(sandbox.url, sandbox.test_key)
