"""``--exactly-once`` on a broker of this module's own: a consumer killed five times at
fixed points of the run and the broker restarted once, yet a read_committed reader sees each event's
``message.accepted`` once, each delivery's final record once, and the sandbox holds
one message per event."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from chatmaid.sandbox import SandboxHandle
from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    WEBHOOK_SECRET,
    BridgeProcess,
    PrivateBroker,
    Topics,
    bridge_messages,
    notify_event,
    produce_events,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

COUNT = 1000
KILL_AT = (150, 300, 500, 700, 850)


def test_kills_and_a_broker_restart_leave_one_record_per_event(
    chatmaid_sandbox: SandboxHandle,
    private_broker: PrivateBroker,
    private_topics: Topics,
    bridges: list[BridgeProcess],
    tmp_path: Path,
) -> None:
    sandbox, topics = chatmaid_sandbox, private_topics
    sandbox.admin.update_settings(rate_limit=0, time_scale=0.02)  # webhook retries in 1.2 s
    sandbox.admin.inject_latency(0.05, path="/v1/messages/send")
    receiver = BridgeProcess("receive", topics.flags("receive"), sandbox=sandbox,
                             log_dir=tmp_path, name="receiver")  # fmt: skip
    bridges.append(receiver)
    receiver.start()
    sandbox.admin.add_webhook(f"{receiver.url}/webhooks/chatmaid", WEBHOOK_SECRET)
    consumer = BridgeProcess(
        "consume",
        [*topics.flags(), "--requests-per-minute", "0", "--concurrency", "8", "--exactly-once",
         "--commit-interval", "0.3", "--group-instance-id", "exactly-once-consumer",
         "--session-timeout-ms", "6000"],
        sandbox=sandbox, log_dir=tmp_path, name="consumer",
    )  # fmt: skip
    bridges.append(consumer)
    events = [notify_event(topics.suffix, i) for i in range(COUNT)]
    produce_events(topics.bootstrap, topics.notify, events)

    consumer.start()

    # kill -9 at fixed points of the run (the third one with the broker restarted), so
    # every run is killed as often however fast the machine is
    def sandbox_count() -> int:
        return len(bridge_messages(sandbox.admin))

    for milestone in KILL_AT:
        wait_until(lambda: sandbox_count() >= milestone, 120, f"{milestone} sent")  # noqa: B023
        consumer.kill()
        if milestone == KILL_AT[2]:
            private_broker.down()
            private_broker.up()
        consumer.start()
    wait_until(lambda: sandbox_count() >= COUNT, 120, "every send")
    assert consumer.starts == len(KILL_AT) + 1

    messages = bridge_messages(sandbox.admin)
    assert len(messages) == COUNT
    assert sorted(m["to"] for m in messages) == sorted(e["to"] for e in events)
    message_ids = {m["id"] for m in messages}

    def complete(records: list[object]) -> bool:
        seen = [json.loads(r.value) for r in records]  # type: ignore[attr-defined]
        accepted = {r["eventId"] for r in seen if r["type"] == "message.accepted"}
        sent = {r["messageId"] for r in seen if r["type"] == "message.sent"}
        return accepted >= {e["eventId"] for e in events} and sent >= message_ids

    with TopicReader(topics.bootstrap, topics.results, read_committed=True) as results:
        results.wait_for(complete, 120, "every accepted and final record")
        seen = [json.loads(r.value) for r in results.settle(2.0)]
    accepted = Counter(r["eventId"] for r in seen if r["type"] == "message.accepted")
    sent = Counter(r["messageId"] for r in seen if r["type"] == "message.sent")
    assert sum(accepted.values()) == COUNT
    assert set(accepted.values()) == {1}
    assert sum(sent.values()) == COUNT
    assert set(sent.values()) == {1}
    with TopicReader(topics.bootstrap, topics.dlq, read_committed=True) as dlq:
        assert dlq.settle(1.0) == []
    assert consumer.terminate() == 0
    assert receiver.terminate() == 0
