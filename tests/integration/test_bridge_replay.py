"""``chatmaid-bridge replay`` on the real broker and sandbox: dead letters go back to the
notify topic with the idempotency key their sends used, so replaying twice leaves one
message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatmaid.sandbox import SandboxHandle
from chatmaid_kafka.records import error_headers
from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    REPO,
    BridgeProcess,
    Topics,
    produce,
    results_by_event,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SENDER = "+15550009999"  # not a phone of the account until the test adds it


def replay(topics: Topics, *flags: str) -> str:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "chatmaid_kafka.cli", "replay", *topics.flags("receive"),
         "--log-format", "text", *flags],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_replaying_dead_letters_twice_sends_each_message_once(
    chatmaid_sandbox: SandboxHandle, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    args = [*topics.flags(), "--requests-per-minute", "0"]
    bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path)
    bridges.append(bridge)
    bridge.start()
    # No eventId: without the replay header its key would derive from a new offset.
    event = {"to": "+15557654321", "content": "replayed once", "from": SENDER}
    produce(topics.bootstrap, topics.notify, [(b"k", json.dumps(event).encode()), (b"k", b"{")])
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        letters = dlq.wait_for(lambda r: len(r) >= 2, 60, "two dead letters")
    stages = {error_headers(r.headers)["stage"]: r for r in letters}
    assert set(stages) == {"resolve", "deserialize"}
    key = error_headers(stages["resolve"].headers)["idempotency.key"]
    assert key.startswith("kafka-")

    assert replay(topics, "--dry-run") == (
        f"would replay 2 of 2 dead letters from {topics.dlq} to {topics.notify} "
        "(1 deserialize, 1 resolve); 0 left out by the filters"
    )
    assert replay(topics, "--dry-run", "--stage", "resolve", "--error-class", "Nope") == (
        f"would replay 0 of 2 dead letters from {topics.dlq} to {topics.notify}; "
        "2 left out by the filters"
    )
    sandbox.admin.create_phone(SENDER)  # the cause is fixed
    for _ in range(2):
        assert replay(topics, "--stage", "resolve", "--error-class", "NoConnectedPhoneError") == (
            f"replayed 1 of 2 dead letters from {topics.dlq} to {topics.notify} "
            "(1 resolve); 1 left out by the filters"
        )
    with TopicReader(topics.bootstrap, topics.results) as results:
        records = results.wait_for(lambda r: len(r) >= 2, 60, "both replays accepted")
    accepted = results_by_event(records)["<none>"]["message.accepted"]
    assert [a["idempotencyKey"] for a in accepted] == [key, key]
    assert accepted[0]["messageId"] == accepted[1]["messageId"]
    sent = [m for m in sandbox.admin.messages() if m["content"] == "replayed once"]
    assert len(sent) == 1
    assert sent[0]["idempotencyKey"] == key
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert len(dlq.settle(1.0)) == 2  # the replays were not dead-lettered again
    wait_until(lambda: bridge.metric("chatmaid_bridge_events_sent_total") == 2, 10, "two sends")
    assert bridge.terminate() == 0
