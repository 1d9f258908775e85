"""API faults: a 429 window and injected 5xx answers delay sends but lose none."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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

COUNT = 400


def test_a_429_window_and_5xx_answers_delay_but_lose_nothing(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    # Only what the docs show: the 429's retryAfter is in the body, no header.
    sandbox.admin.update_settings(rate_limit=0)
    send = "/v1/messages/send"
    sandbox.admin.inject_latency(0.02, path=send)
    sandbox.admin.inject_errors(0.3, status=503, path=send)
    bridge = BridgeProcess(
        "consume",
        [
            *topics.flags(),
            "--requests-per-minute",
            "60000",
            "--max-retries",
            "12",
            "--concurrency",
            "16",
        ],
        sandbox=sandbox,
        log_dir=tmp_path,
    )
    bridges.append(bridge)
    bridge.start()
    events = [notify_event(topics.suffix, i) for i in range(COUNT)]
    produce_events(topics.bootstrap, topics.notify, events)

    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= COUNT // 4, 60, "a quarter sent")
    # A documented 429: retryAfter 3 in the body, no Retry-After header. The bridge
    # pauses its partitions for as long as it says.
    sandbox.admin.force_rate_limit(2.0, retry_after=3, path=send)
    wait_until(lambda: bridge.metric("chatmaid_bridge_api_rate_limited_total") > 0, 10, "a 429")
    wait_until(lambda: bridge.metric("chatmaid_bridge_partitions_paused") == 4, 3, "a pause")
    paused_at = time.monotonic()
    wait_until(lambda: bridge.metric("chatmaid_bridge_partitions_paused") < 4, 10, "resumed")
    assert time.monotonic() - paused_at >= 2.0  # ~3 s from the 429, less the polling lag
    wait_until(lambda: len(bridge_messages(sandbox.admin)) >= COUNT, 120, "every send")

    messages = bridge_messages(sandbox.admin)
    assert len(messages) == COUNT
    assert len({m["idempotencyKey"] for m in messages}) == COUNT
    with TopicReader(topics.bootstrap, topics.results) as results:
        records = results.wait_for(lambda r: len(r) >= COUNT, 60, "every accepted record")
        accepted = {json.loads(r.value)["eventId"] for r in results.settle()}
    assert accepted == {e["eventId"] for e in events}
    assert len(records) == COUNT
    with TopicReader(topics.bootstrap, topics.dlq) as dlq:
        assert dlq.settle(1.0) == []
    assert bridge.metric("chatmaid_bridge_api_retries_total") > 0
    assert bridge.metric('chatmaid_bridge_api_requests_total{status="503"}') > 0
    assert bridge.metric('chatmaid_bridge_api_requests_total{status="429"}') > 0
    assert bridge.metric("chatmaid_bridge_events_sent_total") == COUNT
    assert bridge.terminate() == 0
