"""End to end: notify events -> the bridge -> sandbox sends -> webhooks -> results topic.

A real broker, the sandbox, and ``chatmaid-bridge`` as a subprocess.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chatmaid_kafka.records import error_headers
from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    WEBHOOK_SECRET,
    BridgeProcess,
    Topics,
    bridge_messages,
    notify_event,
    outcomes_complete,
    produce,
    produce_events,
    results_by_event,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FAILING_RECIPIENT = "+15558880000"  # the sandbox fails numbers ending in 0000


def test_every_event_gets_its_accepted_record_and_final_outcome(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    # Only what the docs show: no delivery-id header on webhooks.
    sandbox.admin.update_settings(rate_limit=0)
    bridge = BridgeProcess(
        "run", [*topics.flags(), "--requests-per-minute", "0"], sandbox=sandbox, log_dir=tmp_path
    )
    bridges.append(bridge)
    sandbox.admin.add_webhook(f"{bridge.url}/webhooks/chatmaid", WEBHOOK_SECRET)
    bridge.start()

    count = 300
    failing = {7, 150, 299}
    events = [
        notify_event(topics.suffix, i, **({"to": FAILING_RECIPIENT} if i in failing else {}))
        for i in range(count)
    ]
    ids = [e["eventId"] for e in events]
    started = time.monotonic()
    produce_events(topics.bootstrap, topics.notify, events)
    with TopicReader(topics.bootstrap, topics.results) as results:
        results.wait_for(
            lambda records: (
                sum(json.loads(r.value)["type"] == "message.accepted" for r in records) >= count
            ),
            120,
            "every event accepted",
        )
        elapsed = time.monotonic() - started
        results.wait_for(lambda r: outcomes_complete(r, ids), 60, "every final outcome")
        grouped = results_by_event(results.settle())
    print(f"\n{count} events accepted in {elapsed:.1f}s: {count / elapsed:.0f} events/s")

    for index, event in enumerate(events):
        outcome = grouped[event["eventId"]]
        [accepted] = outcome["message.accepted"]
        final_type = "message.failed" if index in failing else "message.sent"
        [final] = outcome[final_type]
        assert accepted["messageId"] == final["messageId"]
        assert accepted["metadata"] == final["metadata"] == {"index": index}
        assert final["source"] == "webhook"
        assert final["idempotencyKey"] == accepted["idempotencyKey"]
        if index in failing:
            assert final["errorCode"] == "INVALID_RECIPIENT"
    assert "<none>" not in grouped  # every webhook found its eventId

    messages = bridge_messages(sandbox.admin)
    assert len(messages) == count
    assert len({m["idempotencyKey"] for m in messages}) == count
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert dlq.settle(1.0) == []
    assert bridge.metric("chatmaid_bridge_events_sent_total") == count
    assert bridge.metric("chatmaid_bridge_webhooks_verified_total") >= count
    assert bridge.metric("chatmaid_bridge_events_pending") == 0
    assert bridge.terminate() == 0
    assert "bridge stopped" in bridge.log()


def test_invalid_events_are_dead_lettered_and_later_events_still_sent(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0)
    good = [notify_event(topics.suffix, i) for i in range(6)]
    bad: list[tuple[bytes, str, str]] = [
        (b"{this is not json", "deserialize", "not UTF-8 JSON"),
        (json.dumps({"eventId": "bad-phone", "to": "555-0100", "content": "x"}).encode(),
         "validate", "E.164"),
        (json.dumps({"eventId": "no-content", "to": "+15557654321"}).encode(),
         "validate", "content or mediaUrls is required"),
        (json.dumps({"eventId": "unknown-sender", "to": "+15557654321", "content": "x",
                     "fromPhoneId": "phone_does_not_exist"}).encode(),
         "send", "not found"),
    ]  # fmt: skip
    # One key: one partition, one ordered chain. Bad events sit between good ones.
    records: list[tuple[bytes | None, bytes | None]] = []
    for index, event in enumerate(good):
        records.append((b"same-key", json.dumps(event).encode()))
        if index < len(bad):
            records.append((b"same-key", bad[index][0]))
    produce(topics.bootstrap, topics.notify, records, headers=[("trace-id", b"t-1")])

    bridge = BridgeProcess(
        "consume",
        [*topics.flags(), "--requests-per-minute", "0"],
        sandbox=sandbox,
        log_dir=tmp_path,
    )
    bridges.append(bridge)
    bridge.start()
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        letters = dlq.wait_for(lambda r: len(r) >= len(bad), 60, "every dead letter")
    wait_until(lambda: len(bridge_messages(sandbox.admin)) == len(good), 60, "the good sends")

    assert len(letters) == len(bad)
    for letter, (value, stage, reason) in zip(letters, bad, strict=True):
        errors = error_headers(letter.headers)
        assert letter.key == b"same-key"
        assert letter.value == value
        assert ("trace-id", b"t-1") in letter.headers
        assert errors["stage"] == stage
        assert reason in errors["exception.message"]
        assert errors["topic"] == topics.notify
        assert int(errors["offset"]) >= 0
        assert errors["class.name"]
    assert error_headers(letters[-1].headers)["http.status"] == "404"
    sent_to = sorted(m["to"] for m in bridge_messages(sandbox.admin))
    assert sent_to == sorted(e["to"] for e in good)
    wait_until(
        lambda: bridge.metric("chatmaid_bridge_events_dead_lettered_total") == len(bad),
        10,
        "the dead-letter metric",
    )
    assert bridge.terminate() == 0


def test_a_refused_key_stops_the_bridge_and_loses_nothing(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0)
    args = [*topics.flags(), "--requests-per-minute", "0"]

    unknown = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path, name="unknown")
    unknown.env["CHATMAID_API_KEY"] = "sk_test_not_a_key_of_this_account"
    unknown.start_expecting_exit(1)
    assert "cannot start: the API refused the key" in unknown.log()

    key = sandbox.admin.create_api_key()
    bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path)
    bridge.env["CHATMAID_API_KEY"] = key["key"]
    bridges.append(bridge)
    bridge.start()
    events = [notify_event(topics.suffix, i) for i in range(40)]
    produce_events(topics.bootstrap, topics.notify, events[:20])
    wait_until(lambda: len(bridge_messages(sandbox.admin)) == 20, 30, "the first sends")

    sandbox.admin.update_api_key(key["id"], expired=True)  # revoked while running
    produce_events(topics.bootstrap, topics.notify, events[20:])
    assert bridge.wait(30) == 1
    assert "stopped on a failure" in bridge.log()
    assert key["key"] not in bridge.log()
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert dlq.settle(1.0) == []  # not the events' fault: nothing dead-lettered

    sandbox.admin.update_api_key(key["id"], expired=False)
    bridge.start()
    wait_until(lambda: len(bridge_messages(sandbox.admin)) == 40, 30, "the rest, after restart")
    assert sorted(m["to"] for m in bridge_messages(sandbox.admin)) == sorted(
        e["to"] for e in events
    )
    assert bridge.terminate() == 0
