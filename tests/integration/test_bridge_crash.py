"""Crash safety: kill -9 the consumer repeatedly during 1,000 events; nothing lost or doubled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    WEBHOOK_SECRET,
    BridgeProcess,
    Topics,
    bridge_messages,
    notify_event,
    produce_events,
    results_by_event,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

COUNT = 1000
KILL_AT = (150, 400, 650)  # messages the sandbox holds when the consumer is killed


def test_kill_9_during_1000_events_loses_nothing_and_sends_nothing_twice(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    # Webhooks carry only the documented headers: the receiver de-duplicates without
    # a delivery id.
    sandbox.admin.update_settings(rate_limit=0)
    # The receiver is its own process and keeps running: webhooks never miss it.
    receiver = BridgeProcess(
        "receive", topics.flags("receive"), sandbox=sandbox, log_dir=tmp_path, name="receiver"
    )
    bridges.append(receiver)
    receiver.start()
    sandbox.admin.add_webhook(f"{receiver.url}/webhooks/chatmaid", WEBHOOK_SECRET)
    consumer = BridgeProcess(
        "consume",
        [
            *topics.flags(),
            "--requests-per-minute",
            "0",
            "--commit-interval",
            "0.2",
            "--session-timeout-ms",
            "6000",
            "--group-instance-id",
            "crash-test-consumer",
        ],
        sandbox=sandbox,
        log_dir=tmp_path,
        name="consumer",
    )
    bridges.append(consumer)
    events = [notify_event(topics.suffix, i) for i in range(COUNT)]
    produce_events(topics.bootstrap, topics.notify, events)

    consumer.start()
    for threshold in KILL_AT:
        wait_until(
            lambda t=threshold: len(bridge_messages(sandbox.admin)) >= t,  # type: ignore[misc]
            90,
            f"{threshold} sends before a kill",
        )
        consumer.kill()
        assert len(bridge_messages(sandbox.admin)) < COUNT, "killed too late to matter"
        consumer.start()
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= COUNT, 120, "every send")

    messages = bridge_messages(sandbox.admin)
    assert len(messages) == COUNT
    assert len({m["idempotencyKey"] for m in messages}) == COUNT
    assert sorted(m["to"] for m in messages) == sorted(e["to"] for e in events)
    message_ids = {m["id"] for m in messages}

    def complete(records: list[Any]) -> bool:
        results = [json.loads(r.value) for r in records]
        accepted = {r["eventId"] for r in results if r["type"] == "message.accepted"}
        delivered = {r["messageId"] for r in results if r["type"] == "message.sent"}
        return accepted >= {e["eventId"] for e in events} and delivered >= message_ids

    with TopicReader(topics.bootstrap, topics.results) as results:
        records = results.wait_for(complete, 90, "every accepted record and outcome")
        grouped = results_by_event(results.settle())
    for event in events:
        accepted = grouped[event["eventId"]]["message.accepted"]
        # A send redone after a crash gets the original message back: same messageId.
        assert len({a["messageId"] for a in accepted}) == 1
        assert all(a["metadata"] == event["metadata"] for a in accepted)
    sent = [json.loads(r.value) for r in records if json.loads(r.value)["type"] == "message.sent"]
    assert {s["messageId"] for s in sent} == message_ids
    assert len(sent) == COUNT  # the receiver published each delivery once

    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert dlq.settle(1.0) == []
    assert consumer.starts == len(KILL_AT) + 1
    assert consumer.terminate() == 0
    assert receiver.terminate() == 0
