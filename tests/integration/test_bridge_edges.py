"""Issue 9, items 1 and 2, on the real broker and sandbox: no fault of the network, the
API or the account ever becomes a dead letter; every event ends as one message and one
``message.accepted`` record. The sandbox sends only what the docs show: a 429 has its
``retryAfter`` in the body and no ``Retry-After`` header."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka.consumer import KafkaConsumer
from kafka.producer import KafkaProducer
from kafka.structs import TopicPartition

from chatmaid.sandbox import SandboxHandle
from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    BridgeProcess,
    Topics,
    bridge_messages,
    notify_event,
    produce_events,
    results_by_event,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SEND = "/v1/messages/send"


def assert_each_event_sent_once(
    sandbox: SandboxHandle,
    topics: Topics,
    events: list[dict[str, Any]],
    *,
    rebalanced: bool = False,
) -> None:
    """Exactly one message per event and no dead letter; one accepted record each, or
    after a rebalance (results are at-least-once) at least one, all for that message."""
    messages = bridge_messages(sandbox.admin)
    assert len(messages) == len(events)
    assert sorted(m["to"] for m in messages) == sorted(e["to"] for e in events)
    assert len({m["idempotencyKey"] for m in messages}) == len(events)
    wanted = {e["eventId"] for e in events}
    with TopicReader(topics.bootstrap, topics.results) as results:
        results.wait_for(lambda r: set(results_by_event(r)) >= wanted, 60, "every accepted record")
        grouped = results_by_event(results.settle())
    accepted = {e: grouped[e].get("message.accepted", []) for e in wanted}
    if rebalanced:
        assert all(len({a["messageId"] for a in found}) == 1 for found in accepted.values())
    else:
        assert {e: len(found) for e, found in accepted.items()} == dict.fromkeys(wanted, 1)
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert dlq.settle(1.0) == []


def test_5xx_dropped_connections_and_a_429_window_never_dead_letter(
    chatmaid_sandbox: SandboxHandle, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0)
    sandbox.admin.inject_errors(0.3, status=503, path=SEND)
    sandbox.admin.drop_connections(0.1, path=SEND)  # after the API created the message
    # Few retries and a short deadline: rounds of attempts run out often.
    args = [*topics.flags(), "--requests-per-minute", "0", "--concurrency", "16",
            "--max-retries", "1", "--send-deadline", "3"]  # fmt: skip
    bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path)
    bridges.append(bridge)
    bridge.start()
    events = [notify_event(topics.suffix, i) for i in range(1500)]
    produce_events(topics.bootstrap, topics.notify, events, keys=64)

    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 300, 90, "300 sent")
    sandbox.admin.force_rate_limit(10.0, retry_after=2, path=SEND)
    wait_until(lambda: bridge.metric("chatmaid_bridge_api_rate_limited_total") > 0, 10, "a 429")
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 1500, 180, "every send")

    assert_each_event_sent_once(sandbox, topics, events)
    assert bridge.metric('chatmaid_bridge_send_rounds_failed_total{action="retry"}') > 0
    assert "sending it again in" in bridge.log()
    assert bridge.metric("chatmaid_bridge_events_dead_lettered_total") == 0
    assert bridge.terminate() == 0


def test_three_consumers_on_one_key_at_three_times_its_rate_never_dead_letter(
    chatmaid_sandbox: SandboxHandle, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    per_minute = 1200
    sandbox.admin.update_settings(rate_limit=per_minute)
    # Each process takes the key's whole limit (the scope a user might get wrong).
    args = [*topics.flags(), "--requests-per-minute", str(per_minute), "--concurrency", "8",
            "--rate-limit-scope", "process"]  # fmt: skip
    for name in ("first", "second", "third"):
        bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path, name=name)
        bridges.append(bridge)
        bridge.start()
    # The third's assignment ends the group's rebalances: no send is abandoned after it.
    wait_until(lambda: "assigned" in bridges[-1].log(), 60, "the group's last assignment")
    drain_the_keys_bucket(sandbox)  # the events meet its steady rate (20/s), not its burst
    events = [notify_event(topics.suffix, i) for i in range(300)]
    produce_events(topics.bootstrap, topics.notify, events, keys=32)

    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 300, 180, "every send")

    assert_each_event_sent_once(sandbox, topics, events)
    assert sum(b.metric("chatmaid_bridge_api_rate_limited_total") for b in bridges) > 0
    assert all(b.terminate() == 0 for b in bridges)


def test_a_lapsed_subscription_pauses_everything_and_loses_nothing(
    chatmaid_sandbox: SandboxHandle, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0)
    args = [*topics.flags(), "--requests-per-minute", "0", "--probe-interval", "1"]
    bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path)
    bridge.env["CHATMAID_API_KEY"] = sandbox.live_key  # live keys need a subscription
    bridges.append(bridge)
    bridge.start()
    sandbox.admin.set_subscription("canceled")
    events = [notify_event(topics.suffix, i) for i in range(100)]
    produce_events(topics.bootstrap, topics.notify, events)

    def health() -> dict[str, Any]:
        response = httpx.get(f"{bridge.url}/healthz", timeout=5)
        return {"code": response.status_code, **response.json()}

    wait_until(lambda: health()["code"] == 503, 30, "/healthz failing while halted")
    halted = health()
    assert halted["status"] == "failing"
    assert "PermissionDeniedError" in halted["halted"]["reason"]
    wait_until(lambda: bridge.metric("chatmaid_bridge_send_rounds_failed_total") >= 3, 30,
               "three probes refused")  # fmt: skip
    assert bridge.metric("chatmaid_bridge_api_halted") == 1
    assert bridge_messages(sandbox.admin) == []
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert dlq.settle(1.0) == []

    sandbox.admin.set_subscription("active")
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 100, 60, "every send")
    assert_each_event_sent_once(sandbox, topics, events)
    assert health()["status"] == "ok"
    assert bridge.metric("chatmaid_bridge_api_halted") == 0
    assert "the API refuses this account's sends" in bridge.log()
    assert "resuming" in bridge.log()
    assert bridge.terminate() == 0


def test_a_graceful_stop_under_load_commits_everything_it_sent(
    chatmaid_sandbox: SandboxHandle, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0)
    sandbox.admin.inject_latency(0.5, path=SEND)
    concurrency = 8
    args = [*topics.flags(), "--requests-per-minute", "0", "--concurrency", str(concurrency)]
    bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path)
    bridges.append(bridge)
    bridge.start()
    events = [notify_event(topics.suffix, i) for i in range(200)]
    produce_events(topics.bootstrap, topics.notify, events, keys=64)
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 60, 60, "60 sent")

    assert bridge.terminate() == 0  # SIGTERM with sends in flight
    sent_before = len(bridge_messages(sandbox.admin))
    bridge.start()
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 200, 90, "every send")

    assert_each_event_sent_once(sandbox, topics, events)
    sends = sum(sandbox.admin.requests()["byEndpoint"][f"POST {SEND}"].values())
    assert 60 <= sent_before < 200
    assert sends - 200 <= concurrency  # sent again after the restart: what was in flight
    assert bridge.terminate() == 0


def test_records_too_large_to_produce_are_cut_down_and_the_partition_moves_on(
    chatmaid_sandbox: SandboxHandle, kafka_bootstrap: str, bridges: list[BridgeProcess],
    tmp_path: Path,
) -> None:  # fmt: skip
    sandbox = chatmaid_sandbox
    topics = Topics(kafka_bootstrap)
    five_mb = str(5 * 1024 * 1024)
    topics.create({topics.notify: {"max.message.bytes": five_mb}})
    try:
        args = [*topics.flags(), "--requests-per-minute", "0"]
        bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path)
        bridges.append(bridge)
        bridge.start()
        garbage = b"\xff" * 1_500_000  # not JSON: a 1.5 MB dead letter
        big = notify_event(topics.suffix, 0, metadata={"blob": "x" * 1_200_000})
        small = notify_event(topics.suffix, 1)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=4_000_000)
        for value in (garbage, json.dumps(big).encode(), json.dumps(small).encode()):
            producer.send(topics.notify, key=b"k", value=value, partition=0)
        producer.flush(30)
        producer.close()

        started = time.monotonic()
        wait_until(lambda: committed_offset(topics, 0) == 3, 30, "the partition committed past")
        moved_on_after = time.monotonic() - started
        assert moved_on_after < 10, moved_on_after
        with TopicReader(topics.bootstrap, topics.dlq) as dlq:
            [letter] = dlq.wait_for(lambda r: len(r) >= 1, 30, "the dead letter")
        headers = dict(letter.headers)
        assert headers["chatmaid.errors.stage"] == b"deserialize"
        assert headers["chatmaid.errors.value.truncated"] == b"true"
        assert headers["chatmaid.errors.value.size"] == b"1500000"
        assert letter.value == garbage[: len(letter.value)]
        assert len(letter.value) < 100_000
        with TopicReader(topics.bootstrap, topics.results) as results:
            records = results.wait_for(lambda r: len(r) >= 2, 30, "both accepted records")
        by_event = {json.loads(r.value)["eventId"]: r for r in records}
        trimmed = by_event[big["eventId"]]
        assert dict(trimmed.headers)["chatmaid.trimmed"] == b"data,metadata"
        assert json.loads(trimmed.value)["metadata"] is None
        assert json.loads(by_event[small["eventId"]].value)["metadata"] == small["metadata"]
        assert len(bridge_messages(sandbox.admin)) == 2
        assert bridge.terminate() == 0
    finally:
        topics.delete()


def committed_offset(topics: Topics, partition: int) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, group_id=topics.group)
    try:
        offset: int | None = consumer.committed(TopicPartition(topics.notify, partition))
        return offset
    finally:
        consumer.close()


def test_three_consumers_share_the_keys_limit_across_a_rebalance(
    chatmaid_sandbox: SandboxHandle, bridges: list[BridgeProcess], kafka_bootstrap: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    sandbox = chatmaid_sandbox
    key_limit = 1200  # the sandbox refills the key at 20 requests a second
    sandbox.admin.update_settings(rate_limit=key_limit)
    topics = Topics(kafka_bootstrap, partitions=6)
    topics.create()
    try:
        # The group shares 1,100/min (each process its share of the 6 partitions), with
        # small bursts; the key's bucket starts empty, so only its steady rate is there.
        args = [*topics.flags(), "--requests-per-minute", "1100", "--rate-limit-burst", "2"]
        drain_the_keys_bucket(sandbox)
        events = [notify_event(topics.suffix, i) for i in range(400)]
        produce_events(topics.bootstrap, topics.notify, events, keys=60)
        for name in ("first", "second"):
            bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path, name=name)
            bridges.append(bridge)
            bridge.start()
        wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 100, 60, "100 sent")
        third = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path, name="third")
        bridges.append(third)
        third.start()  # a rebalance: 3, 3 -> 2, 2, 2 partitions
        wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 400, 120, "every send")

        assert_each_event_sent_once(sandbox, topics, events, rebalanced=True)
        sends = sandbox.admin.requests()["byEndpoint"][f"POST {SEND}"]
        assert sends.get("429", 0) < 0.01 * sum(sends.values()), sends
        shares = {round(b.metric("chatmaid_bridge_rate_limit_per_minute")) for b in bridges}
        assert shares == {367}  # 1,100 * 2 / 6 each, after the rebalance
        assert "rate share: 550 of the key's 1100" in bridges[0].log()  # before it
        assert all(b.terminate() == 0 for b in bridges)
    finally:
        topics.delete()


def test_processes_whose_partitions_are_idle_lend_their_share(
    chatmaid_sandbox: SandboxHandle, bridges: list[BridgeProcess], kafka_bootstrap: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    sandbox = chatmaid_sandbox
    key_limit = 600
    sandbox.admin.update_settings(rate_limit=key_limit)
    topics = Topics(kafka_bootstrap, partitions=6)
    topics.create()
    try:
        args = [*topics.flags(), "--requests-per-minute", str(key_limit)]
        for name in ("first", "second", "third"):
            bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path, name=name)
            bridges.append(bridge)
            bridge.start()
        wait_until(lambda: all("(2 of 6 partitions" in b.log() for b in bridges), 60,
                   "two partitions each")  # fmt: skip
        # Every event on one key: one partition has work, five have none.
        events = [notify_event(topics.suffix, i) for i in range(300)]
        produce_events(topics.bootstrap, topics.notify, events, keys=1)

        def rates() -> list[float]:
            return sorted(b.metric("chatmaid_bridge_rate_limit_per_minute") for b in bridges)

        # With weights 1 (work) and 0.05 (none), the busy partition's owner takes
        # 1.05 / 1.25 of the limit and each other process 0.1 / 1.25 of it.
        lent = [key_limit * 0.1 / 1.25] * 2 + [key_limit * 1.05 / 1.25]
        wait_until(lambda: rates() == pytest.approx(lent, rel=0.01), 30, f"shares {lent}")
        wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 300, 120, "every send")

        assert_each_event_sent_once(sandbox, topics, events)
        sends = sandbox.admin.requests()["byEndpoint"][f"POST {SEND}"]
        assert sends.get("429", 0) < 0.01 * sum(sends.values()), sends
        # The backlog done, every partition weighs the same again.
        wait_until(lambda: rates() == pytest.approx([key_limit / 3] * 3, rel=0.01), 30,
                   "equal shares")  # fmt: skip
        assert all(b.terminate() == 0 for b in bridges)
    finally:
        topics.delete()


def drain_the_keys_bucket(sandbox: SandboxHandle) -> None:
    headers = {"Authorization": f"Bearer {sandbox.test_key}"}
    with httpx.Client(base_url=sandbox.url, headers=headers) as api:
        while api.get("/v1/account").status_code != 429:
            pass
