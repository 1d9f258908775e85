"""Every webhook type the live API sends reaches the results topic once, as it was sent.

The real broker, the sandbox in its ``live`` profile (``message.delivered``/``.read``,
``message.received``, ``message.outgoing``, the JS SDK's phone events) and the bridge as
a subprocess. Between the sandbox and the bridge sits a relay that records each attempt
and answers 500 to the first attempt of every delivery after the bridge answered it:
the bridge has published it, the sandbox retries it (signed afresh, the same body), and
the bridge must know it again, with the undocumented ``X-Chatmaid-Delivery`` header and
without it (the sandbox's default, as the docs promise only three headers).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatmaid.sandbox import SEED
from chatmaid.sandbox.server import SandboxHandle, ServerThread
from chatmaid_kafka.testing import TopicReader
from tests.integration.kafka_helpers import (
    WEBHOOK_SECRET,
    BridgeProcess,
    Topics,
    notify_event,
    produce_events,
    start_receiver,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.parametrize("chatmaid_sandbox_profile", ["live"]),
]

CONTACT = "+15557654321"
DELIVERY_HEADER = "x-chatmaid-delivery"


@dataclass(frozen=True)
class Attempt:
    """One attempt as the relay saw it, and the bridge's answer to it."""

    headers: dict[str, str]
    body: bytes
    status: int
    answer: dict[str, Any]

    @property
    def event(self) -> str:
        return self.headers["x-chatmaid-event"]


class Relay:
    """Forwards webhooks to ``target``; records every attempt; answers 500 to the first
    attempt of each body (after forwarding it), then whatever the bridge answered."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.attempts: list[Attempt] = []
        app = Starlette(routes=[Route("/relay", self._endpoint, methods=["POST"])])
        self._server = ServerThread(app)
        self.url = self._server.url + "/relay"

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.startswith("x-chatmaid-")}
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            answer = await client.post(
                self.target, content=body, headers={**headers, "content-type": "application/json"}
            )
        first = all(a.body != body for a in self.attempts)
        self.attempts.append(Attempt(headers, body, answer.status_code, answer.json()))
        return Response(status_code=500 if first else answer.status_code)

    def deliveries(self) -> dict[bytes, list[Attempt]]:
        """The attempts by body (a delivery's attempts all carry its body)."""
        grouped: dict[bytes, list[Attempt]] = {}
        for attempt in list(self.attempts):
            grouped.setdefault(attempt.body, []).append(attempt)
        return grouped

    def __enter__(self) -> Relay:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def raw_data(body: bytes) -> bytes:
    """The bytes of a delivered body's ``data`` (compact JSON, ``data`` last, as sent)."""
    data = body[body.index(b'"data":') + len(b'"data":') : -1]
    assert json.loads(data) == json.loads(body)["data"], body  # the slice is the data
    return data


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def fire_every_live_event(sandbox: SandboxHandle) -> str:
    """A message sent past the bridge (sent, delivered, read), a reply, a message typed
    on the phone, a phone connecting: every event type the live profile sends. The
    message's ID."""
    with sandbox.client(requests_per_minute=None) as client:
        direct = client.send_message(from_phone=SEED.phone_id, to=CONTACT, content="direct")
    sandbox.admin.simulate_inbound(sender=CONTACT, content="yes please ¿sí? 👍")
    sandbox.admin.simulate_outgoing(to=CONTACT, content="typed by hand")
    sandbox.admin.set_phone_connected(SEED.disconnected_phone_id, True)
    return direct.id


@pytest.mark.parametrize("delivery_id_header", [False, True], ids=["documented", "delivery-id"])
def test_each_webhook_type_is_one_record_with_the_data_as_delivered(
    chatmaid_sandbox: SandboxHandle,
    topics: Topics,
    bridges: list[BridgeProcess],
    tmp_path: Path,
    delivery_id_header: bool,
) -> None:
    sandbox = chatmaid_sandbox
    sandbox.admin.update_settings(rate_limit=0, delivery_id_header=delivery_id_header)
    bridge = BridgeProcess(
        "run", [*topics.flags(), "--requests-per-minute", "0"], sandbox=sandbox, log_dir=tmp_path
    )
    bridges.append(bridge)
    # Through the bridge: sent, delivered and read with their eventId; the rest past it.
    event = notify_event(topics.suffix, 1, to=CONTACT)
    expected = Counter(
        {"message.sent": 2, "message.delivered": 2, "message.read": 2, "message.received": 1,
         "message.outgoing": 1, "phone.connected": 1}
    )  # fmt: skip
    with Relay(f"{bridge.url}/webhooks/chatmaid") as relay:
        sandbox.admin.add_webhook(relay.url, WEBHOOK_SECRET)  # every event the profile sends
        bridge.start()
        produce_events(topics.bootstrap, topics.notify, [event])
        direct_id = fire_every_live_event(sandbox)
        wait_until(
            lambda: (
                Counter(a[0].event for a in relay.deliveries().values() if len(a) == 2) == expected
            ),
            60,
            "every delivery and its retry",
        )
        deliveries = relay.deliveries()
    with TopicReader(topics.bootstrap, topics.results) as reader:
        reader.wait_for(lambda r: len(r) > expected.total(), 30, "every result record")
        results = [(r.key, r.value, json.loads(r.value)) for r in reader.settle(1.0)]
    [accepted] = [res for _, _, res in results if res["type"] == "message.accepted"]
    webhook_results = [(k, v, res) for k, v, res in results if res["source"] == "webhook"]
    assert len(webhook_results) == expected.total()  # one per delivery, none per retry

    for body, (first, retry) in deliveries.items():
        assert (first.status, first.answer["duplicate"]) == (200, False)
        assert (retry.status, retry.answer["duplicate"]) == (200, True)
        assert (DELIVERY_HEADER in first.headers) is delivery_id_header
        sent = json.loads(body)
        data = sent["data"]
        [(key, value, result)] = [(k, v, r) for k, v, r in webhook_results if r["data"] == data]
        assert compact(result["data"]) == raw_data(body)  # byte for byte, as delivered
        assert raw_data(body) in value
        assert (result["type"], result["occurredAt"]) == (sent["event"], sent["timestamp"])
        if sent["event"] == "phone.connected":
            assert key == SEED.disconnected_phone_id.encode()
            assert (result["phoneId"], result["status"]) == (data["phoneId"], "connected")
        elif sent["event"] in ("message.received", "message.outgoing"):
            assert key == CONTACT.encode()  # the other party: the conversation's key
            assert result["contact"] == CONTACT
        else:
            assert key == data["messageId"].encode()
            assert result["status"] == sent["event"].removeprefix("message.")
            ours = data["messageId"] == accepted["messageId"]
            assert data["messageId"] in (accepted["messageId"], direct_id)
            assert result["eventId"] == (event["eventId"] if ours else None)
            assert result["correlationMissing"] is not ours

    assert bridge.metric("chatmaid_bridge_webhooks_verified_total") == 2 * expected.total()
    assert bridge.metric("chatmaid_bridge_webhooks_duplicate_total") == expected.total()
    assert bridge.metric("chatmaid_bridge_webhooks_uncorrelated_total") == 3  # the direct one
    assert bridge.terminate() == 0


def test_the_type_filter_publishes_only_the_chosen_types(
    chatmaid_sandbox: SandboxHandle, topics: Topics, bridges: list[BridgeProcess], tmp_path: Path
) -> None:
    sandbox = chatmaid_sandbox
    receiver = start_receiver(
        bridges, sandbox, topics, tmp_path, "--webhook-events", "message.received, phone.*"
    )
    sandbox.admin.add_webhook(f"{receiver.url}/webhooks/chatmaid", WEBHOOK_SECRET)
    fire_every_live_event(sandbox)
    delivered = sandbox.admin.wait_for_deliveries(6, succeeded=True, timeout=30)

    with TopicReader(topics.bootstrap, topics.results) as reader:
        reader.wait_for(lambda r: len(r) >= 2, 30, "the chosen types' records")
        types = sorted(json.loads(r.value)["type"] for r in reader.settle(1.0))
    assert types == ["message.received", "phone.connected"]
    assert sorted(d["event"] for d in delivered) == [
        "message.delivered", "message.outgoing", "message.read", "message.received",
        "message.sent", "phone.connected",
    ]  # fmt: skip
    assert receiver.metric("chatmaid_bridge_webhooks_filtered_total") == 4
    assert receiver.metric("chatmaid_bridge_webhooks_verified_total") == 6
    assert receiver.terminate() == 0
