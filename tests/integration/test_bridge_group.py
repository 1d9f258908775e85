"""Two bridge processes in one consumer group share the partitions; each event is sent once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    BridgeProcess,
    Topics,
    bridge_messages,
    notify_event,
    produce_events,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

COUNT = 600


def test_two_bridges_in_one_group_send_every_event_exactly_once(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0)
    sandbox.admin.inject_latency(0.05, path="/v1/messages/send")
    args = [*topics.flags(), "--requests-per-minute", "0", "--concurrency", "4"]
    first, second = (
        BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path, name=name)
        for name in ("first", "second")
    )
    bridges.extend([first, second])
    events = [notify_event(topics.suffix, i) for i in range(COUNT)]
    half = COUNT // 2
    produce_events(topics.bootstrap, topics.notify, events[:half], keys=40)

    first.start()
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 40, 60, "the first bridge sending")
    second.start()  # a rebalance while the first has sends in flight
    wait_until(lambda: "assigned" in second.log(), 60, "the second bridge's partitions")
    produce_events(topics.bootstrap, topics.notify, events[half:], keys=40)
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= COUNT, 120, "every send")

    messages = bridge_messages(sandbox.admin)
    assert len(messages) == COUNT
    assert len({m["idempotencyKey"] for m in messages}) == COUNT
    assert sorted(m["to"] for m in messages) == sorted(e["to"] for e in events)
    with TopicReader(topics.bootstrap, topics.results) as results:
        results.wait_for(
            lambda r: {json.loads(x.value)["eventId"] for x in r} >= {e["eventId"] for e in events},
            60,
            "every accepted record",
        )
    assert "assigned" in first.log()
    assert "released" in first.log()  # the first gave partitions up to the second
    assert first.metric("chatmaid_bridge_events_sent_total") > 0
    assert second.metric("chatmaid_bridge_events_sent_total") > 0
    assert first.terminate() == 0
    assert second.terminate() == 0


def test_one_consume_command_runs_several_processes_of_the_group(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0)
    args = [*topics.flags(), "--requests-per-minute", "0", "--processes", "2"]
    bridge = BridgeProcess("consume", args, sandbox=sandbox, log_dir=tmp_path)
    bridges.append(bridge)
    bridge.start()
    second = f"http://127.0.0.1:{bridge.port + 1}"
    wait_until(lambda: listening_ok(f"{second}/healthz"), 60, "the second process")
    # The first took every partition, then released some to the second.
    wait_until(
        lambda: "released" in bridge.log() and bridge.log().count(" assigned ") >= 2,
        60,
        "the partitions shared",
    )
    events = [notify_event(topics.suffix, i) for i in range(200)]
    produce_events(topics.bootstrap, topics.notify, events, keys=40)
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= 200, 60, "every send")

    messages = bridge_messages(sandbox.admin)
    assert len(messages) == 200
    assert len({m["idempotencyKey"] for m in messages}) == 200

    # Both processes consumed: each owns some of the 4 partitions and sent its events.
    # (events_sent counts an event once Kafka acknowledged its outcome, a little after
    # the API holds the message.)
    def sent() -> list[float]:
        return [metric(url, "chatmaid_bridge_events_sent_total") for url in (bridge.url, second)]

    wait_until(lambda: sum(sent()) >= 200, 30, "every outcome acknowledged")
    assert sum(sent()) == 200
    assert min(sent()) > 0
    assert bridge.terminate() == 0
    assert not listening_ok(f"{second}/healthz")


def listening_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
