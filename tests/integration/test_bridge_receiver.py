"""The webhook receiver as deployed: a ``receive`` process in front of a real broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatmaid.webhooks import sign
from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    WEBHOOK_SECRET,
    BridgeProcess,
    Topics,
    start_receiver,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Receive = Callable[..., BridgeProcess]


@pytest.fixture
def receive(
    chatmaid_sandbox: Any, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> Receive:
    """Starts a ``receive`` process on the test's topics with the flags given."""
    return lambda *flags: start_receiver(bridges, chatmaid_sandbox, topics, tmp_path, *flags)


def body(message_id: str) -> bytes:
    return json.dumps(
        {
            "event": "message.sent",
            "timestamp": "2026-02-06T14:20:00.000Z",
            "data": {"messageId": message_id, "status": "sent", "environment": "test"},
        }
    ).encode()


def test_forged_replayed_oversized_and_malformed_webhooks_are_rejected(
    receive: Receive, topics: Topics
) -> None:
    receiver = receive("--correlation-wait", "0", "--max-body-bytes", "4096")
    url = f"{receiver.url}/webhooks/chatmaid"

    def post(content: bytes, signature: str | None, **headers: str) -> httpx.Response:
        sent = [(name.encode(), value.encode()) for name, value in headers.items()]
        if signature is not None:  # UTF-8 on the wire, whatever it holds
            sent.append((b"X-Chatmaid-Signature", signature.encode()))
        return httpx.post(url, content=content, headers=sent, timeout=10)

    good = body("msg_genuine")
    genuine = post(good, sign(good, WEBHOOK_SECRET), **{"X-Chatmaid-Delivery": "dlv_1"})
    assert genuine.status_code == 200
    again = post(good, sign(good, WEBHOOK_SECRET), **{"X-Chatmaid-Delivery": "dlv_1"})
    assert again.json() == {"ok": True, "duplicate": True}

    rejected = {
        "forged": post(body("msg_forged"), sign(body("msg_forged"), "whsec_attacker")),
        "replayed": post(good, sign(good, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600)),
        "unsigned": post(body("msg_unsigned"), None),
        "garbled header": post(good, "t=soon,v1=zz"),
        "superscript t": post(good, "t=²,v1=" + "a" * 64),
        "400-digit t": post(good, "t=" + "9" * 400 + ",v1=" + "a" * 64),
        "non-ASCII v1": post(good, f"t={int(time.time())},v1=" + "é" * 64),
        "tampered": post(body("msg_tampered"), sign(good, WEBHOOK_SECRET)),
        "oversized": post(b"{" + b" " * 10_000 + b"}", sign(b"{}", WEBHOOK_SECRET)),
        "not json": post(b"<xml/>", sign(b"<xml/>", WEBHOOK_SECRET)),
        "not an event": post(b'{"hello": 1}', sign(b'{"hello": 1}', WEBHOOK_SECRET)),
    }
    expected = {
        "forged": (401, "bad_signature"),
        "replayed": (401, "stale_signature"),
        "unsigned": (401, "missing_signature"),
        "garbled header": (401, "malformed_signature"),
        "superscript t": (401, "malformed_signature"),
        "400-digit t": (401, "malformed_signature"),
        "non-ASCII v1": (401, "malformed_signature"),
        "tampered": (401, "bad_signature"),
        "oversized": (413, "too_large"),
        "not json": (400, "invalid_payload"),
        "not an event": (400, "invalid_payload"),
    }
    for case, response in rejected.items():
        assert (response.status_code, response.json()["error"]) == expected[case], case
        assert response.json()["reason"], case

    with TopicReader(topics.bootstrap, topics.results) as results:
        records = results.settle(2.0)
    assert [json.loads(r.value)["messageId"] for r in records] == ["msg_genuine"]
    assert receiver.metric("chatmaid_bridge_webhooks_rejected_total") == len(rejected)
    assert receiver.metric("chatmaid_bridge_webhooks_verified_total") == 2
    assert receiver.metric("chatmaid_bridge_webhooks_duplicate_total") == 1
    assert WEBHOOK_SECRET not in receiver.log()
    assert "Traceback" not in receiver.log()
    assert receiver.terminate() == 0


def test_a_webhook_answer_waits_out_the_configured_producer_linger(
    receive: Receive, topics: Topics
) -> None:
    receiver = receive("--correlation-wait", "0", "--producer-linger-ms", "700")
    assert "producer linger 700 ms" in receiver.log()

    sent = body("msg_lingered")
    started = time.monotonic()
    answer = httpx.post(
        f"{receiver.url}/webhooks/chatmaid",
        content=sent,
        headers={"X-Chatmaid-Signature": sign(sent, WEBHOOK_SECRET)},
        timeout=10,
    )
    waited = time.monotonic() - started

    assert answer.json() == {"ok": True, "duplicate": False}
    # A lone record leaves only when its batch has lingered; the answer waits for its ack.
    assert waited >= 0.7
    with TopicReader(topics.bootstrap, topics.results) as results:
        records = results.settle(1.0)
    assert [json.loads(r.value)["messageId"] for r in records] == ["msg_lingered"]
