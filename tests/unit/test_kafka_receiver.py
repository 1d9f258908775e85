"""The webhook receiver app: verification, limits, de-duplication, correlation, 503s,
every event type published with its data as received, the type filter."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from chatmaid.webhooks import sign
from chatmaid_kafka.correlation import CorrelationIndex
from chatmaid_kafka.dedupe import DeliveryLedger
from chatmaid_kafka.metrics import BridgeMetrics
from chatmaid_kafka.producer import PublishError
from chatmaid_kafka.receiver import ReceiverConfig, WebhookReceiver, create_app
from chatmaid_kafka.records import Correlation, OutgoingRecord

SECRET = "whsec_unit_receiver_secret"
PATH = "/webhooks/chatmaid"


class Sink:
    """Records published results; can fail, or hang until released."""

    def __init__(self) -> None:
        self.records: list[OutgoingRecord] = []
        self.publishes = 0
        self.fail = False
        self.gate = asyncio.Event()  # cleared: publishes hang until it is set again
        self.gate.set()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        self.publishes += 1
        await self.gate.wait()
        if self.fail:
            raise PublishError("Kafka did not acknowledge: down")
        self.records.extend(records)

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(r.value or b"") for r in self.records]


class Receiver:
    def __init__(
        self,
        client: httpx.AsyncClient,
        sink: Sink,
        index: CorrelationIndex,
        metrics: BridgeMetrics,
        app: Any,
    ) -> None:
        self.app = app
        self.client = client
        self.sink = sink
        self.index = index
        self.metrics = metrics

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    async def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {"X-Chatmaid-Signature": sign(body, secret, timestamp=timestamp)}
        sent.update(headers or {})
        return await self.client.post(PATH, content=body, headers=sent)


def message_event(message_id: str = "msg_1", status: str = "sent") -> dict[str, Any]:
    return {
        "event": f"message.{status}",
        "timestamp": "2026-02-06T14:20:00.000Z",
        "data": {"messageId": message_id, "status": status, "environment": "test"},
    }


@pytest.fixture
def receiver_events() -> tuple[str, ...]:
    """The receiver's ``events`` filter: every type unless a test parametrizes it."""
    return ()


@pytest.fixture
async def receiver(receiver_events: tuple[str, ...]) -> AsyncIterator[Receiver]:
    sink = Sink()
    index = CorrelationIndex(100)
    metrics = BridgeMetrics()
    config = ReceiverConfig(
        secrets=["whsec_old", SECRET],
        results_topic="results",
        tolerance=60,
        max_body_bytes=1024,
        publish_timeout=0.3,
        correlation_wait=0.2,
        events=receiver_events,
    )
    app = create_app(
        metrics,
        lambda: {"status": "ok", "components": {"http": True}},
        WebhookReceiver(config, sink, index, DeliveryLedger(100), metrics),
        PATH,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        yield Receiver(client, sink, index, metrics, app)


async def test_a_caller_that_hangs_up_mid_body_gets_no_answer_and_nothing_is_published(
    receiver: Receiver,
) -> None:
    arriving: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"event": "message.se', "more_body": True},
        {"type": "http.disconnect"},
    ]
    answered: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return arriving.pop(0)

    async def send(message: dict[str, Any]) -> None:
        answered.append(message)

    scope = {"type": "http", "method": "POST", "path": PATH, "headers": []}
    await receiver.app(scope, receive, send)
    assert (answered, arriving, receiver.sink.publishes) == ([], [], 0)


async def test_the_webhook_path_takes_only_post(receiver: Receiver) -> None:
    response = await receiver.client.get(PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_a_verified_webhook_is_published_with_its_event_id(receiver: Receiver) -> None:
    receiver.index.put("msg_1", Correlation(event_id="order-1", metadata={"orderId": 1}))
    response = await receiver.post(message_event())
    assert response.status_code == 200
    assert response.json() == {"ok": True, "duplicate": False}
    [record] = receiver.sink.records
    assert record.topic == "results"
    assert record.key == b"msg_1"
    [result] = receiver.sink.results()
    assert result["type"] == "message.sent"
    assert result["source"] == "webhook"
    assert result["eventId"] == "order-1"
    assert result["correlationMissing"] is False
    assert result["metadata"] == {"orderId": 1}
    assert result["data"]["messageId"] == "msg_1"


async def test_an_unknown_message_is_published_without_event_id_after_a_bounded_wait(
    receiver: Receiver,
) -> None:
    started = time.monotonic()
    assert (await receiver.post(message_event("msg_unknown"))).status_code == 200
    assert 0.15 < time.monotonic() - started < 2
    [result] = receiver.sink.results()
    assert (result["eventId"], result["correlationMissing"]) == (None, True)
    assert receiver.metric("chatmaid_bridge_webhooks_uncorrelated_total") == 1


async def test_a_correlation_arriving_during_the_wait_is_used(receiver: Receiver) -> None:
    correlation = Correlation(event_id="late-1")
    asyncio.get_running_loop().call_later(0.05, receiver.index.put, "msg_late", correlation)
    assert (await receiver.post(message_event("msg_late"))).status_code == 200
    assert receiver.sink.results()[0]["eventId"] == "late-1"


async def test_phone_events_are_published_keyed_by_phone(receiver: Receiver) -> None:
    payload = {
        "event": "phone.disconnected",
        "timestamp": "2026-02-06T14:20:00.000Z",
        "data": {
            "id": "phone_1",
            "phoneNumber": "+15551234567",
            "connectionStatus": "disconnected",
        },
    }
    assert (await receiver.post(payload)).status_code == 200
    [record] = receiver.sink.records
    assert record.key == b"phone_1"
    assert receiver.sink.results()[0]["status"] == "disconnected"


async def test_duplicate_deliveries_are_acknowledged_but_published_once(receiver: Receiver) -> None:
    receiver.index.put("msg_1", Correlation(event_id="e"))
    first = await receiver.post(message_event(), headers={"X-Chatmaid-Delivery": "dlv_1"})
    again = await receiver.post(message_event(), headers={"X-Chatmaid-Delivery": "dlv_1"})
    # A new delivery ID for the same (event, message, status) is recognised too.
    other = await receiver.post(message_event(), headers={"X-Chatmaid-Delivery": "dlv_2"})
    assert [r.status_code for r in (first, again, other)] == [200, 200, 200]
    assert [r.json()["duplicate"] for r in (first, again, other)] == [False, True, True]
    assert len(receiver.sink.records) == 1
    assert (await receiver.post(message_event(status="failed"))).json()["duplicate"] is False


async def test_webhooks_read_together_are_published_as_one_batch(receiver: Receiver) -> None:
    for index in range(8):
        receiver.index.put(f"msg_{index}", Correlation(event_id=f"e{index}"))
    answers = await asyncio.gather(*(receiver.post(message_event(f"msg_{i}")) for i in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert sorted(r["eventId"] for r in receiver.sink.results()) == [f"e{i}" for i in range(8)]
    assert receiver.sink.publishes == 1


async def test_kafka_unavailable_answers_503_and_a_retry_publishes(receiver: Receiver) -> None:
    receiver.index.put("msg_1", Correlation(event_id="e"))
    receiver.sink.fail = True
    headers = {"X-Chatmaid-Delivery": "dlv_1"}
    response = await receiver.post(message_event(), headers=headers)
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    receiver.sink.fail = False
    retry = await receiver.post(message_event(), headers=headers)
    assert retry.status_code == 200
    assert retry.json()["duplicate"] is False
    assert len(receiver.sink.records) == 1


async def test_a_slow_ack_answers_503_and_the_retry_joins_the_same_publish(
    receiver: Receiver,
) -> None:
    receiver.index.put("msg_1", Correlation(event_id="e"))
    receiver.sink.gate.clear()
    headers = {"X-Chatmaid-Delivery": "dlv_1"}
    assert (await receiver.post(message_event(), headers=headers)).status_code == 503
    receiver.sink.gate.set()
    retry = await receiver.post(message_event(), headers=headers)
    assert retry.status_code == 200
    assert retry.json()["duplicate"] is True
    assert len(receiver.sink.records) == 1


@pytest.mark.parametrize(
    ("kwargs", "headers", "reason"),
    [
        ({"secret": "whsec_forged"}, {}, "bad_signature"),
        ({"timestamp": int(time.time()) - 3600}, {}, "stale_signature"),
        ({}, {"X-Chatmaid-Signature": "v1=abc"}, "malformed_signature"),
        ({}, {"X-Chatmaid-Signature": ""}, "missing_signature"),
    ],
)
async def test_forged_replayed_and_unsigned_webhooks_get_401(
    receiver: Receiver, kwargs: dict[str, Any], headers: dict[str, str], reason: str
) -> None:
    response = await receiver.post(message_event(), headers=headers, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"] == reason
    assert response.json()["reason"]
    assert receiver.sink.records == []


async def test_the_previous_secret_still_verifies_while_rotating(receiver: Receiver) -> None:
    receiver.index.put("msg_1", Correlation())
    assert (await receiver.post(message_event(), secret="whsec_old")).status_code == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "invalid_payload"),
        (b'{"event": "message.sent"}', "invalid_payload"),
    ],
)
async def test_signed_but_malformed_bodies_get_400(
    receiver: Receiver, body: bytes, reason: str
) -> None:
    response = await receiver.post(body)
    assert response.status_code == 400
    assert response.json()["error"] == reason
    assert receiver.sink.records == []


async def test_an_event_header_contradicting_the_body_gets_400(receiver: Receiver) -> None:
    response = await receiver.post(message_event(), headers={"X-Chatmaid-Event": "message.failed"})
    assert response.status_code == 400
    assert response.json()["error"] == "event_mismatch"


async def test_oversized_bodies_get_413_declared_or_streamed(receiver: Receiver) -> None:
    big = json.dumps({**message_event(), "padding": "x" * 2000}).encode()
    assert (await receiver.post(big)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        yield big[:600]
        yield big[600:]

    streamed = await receiver.client.post(PATH, content=chunks())  # no Content-Length
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "too_large"


async def test_health_and_metrics(receiver: Receiver) -> None:
    await receiver.post(message_event(), secret="whsec_forged")
    assert (await receiver.client.get("/healthz")).json() == {
        "status": "ok",
        "components": {"http": True},
    }
    metrics = await receiver.client.get("/metrics")
    assert metrics.status_code == 200
    assert 'chatmaid_bridge_webhooks_rejected_total{reason="bad_signature"} 1.0' in metrics.text
    assert "chatmaid_bridge_webhook_seconds_bucket" in metrics.text


@pytest.mark.parametrize(("status", "code"), [("ok", 200), ("degraded", 200), ("failing", 503)])
async def test_health_answers_503_only_when_failing(status: str, code: int) -> None:
    report = {"status": status, "components": {"http": True}}
    app = create_app(BridgeMetrics(), lambda: report)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        response = await client.get("/healthz")
        assert response.status_code == code
        assert response.json() == report
        assert (await client.post(PATH)).status_code == 404  # no receiver: no webhook route


def compact(value: Any) -> bytes:
    """JSON as the sandbox (and the API) write it: no spaces, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


PHONE = "+15551234567"
CONTACT = "+15557654321"
#: The live API's shapes (Chatmaid's JS SDK ``src/types.ts``), with timestamps the core's
#: models would render differently, nulls the models would add keys around, non-ASCII.
LIVE_EVENTS: dict[str, tuple[dict[str, Any], bytes | None, dict[str, Any]]] = {
    "message.delivered": (
        {"messageId": "msg_9", "from": PHONE, "to": CONTACT, "isGroup": False,
         "groupId": None, "status": "delivered", "source": "api",
         "sentAt": "2026-02-06T14:20:00Z", "deliveredAt": "2026-02-06T14:21:00.5Z",
         "readAt": None, "failedAt": None, "environment": "live"},
        b"msg_9",
        {"messageId": "msg_9", "status": "delivered", "environment": "live"},
    ),
    "message.read": (
        {"messageId": "msg_9", "status": "read", "readAt": "2026-02-06T14:22:00+00:00"},
        b"msg_9",
        {"messageId": "msg_9", "status": "read"},
    ),
    "message.received": (
        {"messageId": "msg_in_1", "from": CONTACT, "to": PHONE, "content": "¿Sí? 👍",
         "type": "text", "isGroup": False, "groupId": None,
         "receivedAt": "2026-02-06T14:23:00.000Z"},
        CONTACT.encode(),
        {"messageId": "msg_in_1", "contact": CONTACT, "correlationMissing": False},
    ),
    "message.outgoing": (
        {"from": PHONE, "to": CONTACT, "content": "typed by hand", "type": "text",
         "isGroup": False, "groupId": None, "source": "manual",
         "sentAt": "2026-02-06T14:24:00.000Z"},
        CONTACT.encode(),
        {"messageId": None, "contact": CONTACT},
    ),
    "phone.connected": (
        {"phoneId": "phone_2", "phoneNumber": PHONE, "displayName": "Desk",
         "status": "connected", "lastConnectedAt": "2026-02-06T14:25:00Z",
         "lastDisconnectedAt": None},
        b"phone_2",
        {"phoneId": "phone_2", "status": "connected", "correlationMissing": False},
    ),
    "contact.updated": (  # a type this version does not know
        {"contactId": "c_1", "name": "Zoë", "tags": ["vip"], "score": 0.25},
        None,
        {"messageId": None, "phoneId": None, "contact": None, "status": None},
    ),
}  # fmt: skip


@pytest.mark.parametrize("event", list(LIVE_EVENTS))
async def test_every_event_type_is_published_once_with_its_data_as_received(
    receiver: Receiver, event: str
) -> None:
    data, key, fields = LIVE_EVENTS[event]
    receiver.index.put("msg_9", Correlation(event_id="order-9"))
    timestamp = "2026-02-06T14:26:00Z"  # no milliseconds: the models would add them
    body = compact({"event": event, "timestamp": timestamp, "data": data})
    first = await receiver.post(body, headers={"X-Chatmaid-Event": event})
    retry = await receiver.post(body, headers={"X-Chatmaid-Event": event})  # signed afresh
    assert (first.json()["duplicate"], retry.json()["duplicate"]) == (False, True)
    [record] = receiver.sink.records
    assert record.key == key
    assert compact(data) in (record.value or b"")  # the same bytes, not re-rendered
    [result] = receiver.sink.results()
    assert list(result["data"].items()) == list(data.items())
    assert (result["type"], result["source"], result["occurredAt"]) == (
        event,
        "webhook",
        timestamp,
    )
    assert {name: result[name] for name in fields} == fields


@pytest.mark.parametrize(
    "header",
    [
        "t=²,v1=" + "a" * 64,  # a superscript digit: not unix seconds
        "t=" + "9" * 400 + ",v1=" + "a" * 64,  # overflows any timestamp
        "t=1700000000,v1=" + "é" * 64,  # non-ASCII v1
        "t=1,t=2,v1=" + "a" * 64,  # two timestamps
        "t=1700000000,v1=abc",  # not a 64-digit HMAC
        "t=1700000000",  # no v1
    ],
)
async def test_malformed_signature_headers_get_401_with_a_reason(
    receiver: Receiver, header: str
) -> None:
    signature = [(b"X-Chatmaid-Signature", header.encode())]  # on the wire: UTF-8 bytes
    response = await receiver.client.post(PATH, json=message_event(), headers=signature)
    assert response.status_code == 401
    assert response.json()["error"] == "malformed_signature"
    assert "X-Chatmaid-Signature" in response.json()["reason"]
    assert receiver.sink.records == []


@pytest.mark.parametrize("receiver_events", [("message.sent", "phone.*")])
async def test_only_the_chosen_types_are_published(receiver: Receiver) -> None:
    receiver.index.put("msg_1", Correlation())
    payloads = [
        message_event(status="sent"),
        message_event(status="read"),
        {"event": "phone.connected", "timestamp": "2026-02-06T14:20:00.000Z",
         "data": {"phoneId": "phone_1", "status": "connected"}},
        {"event": "phone.disconnected", "timestamp": "2026-02-06T14:20:00.000Z",
         "data": {"phoneId": "phone_1", "status": "disconnected"}},
        {"event": "message.received", "timestamp": "2026-02-06T14:20:00.000Z",
         "data": {"messageId": "msg_in", "from": CONTACT}},
    ]  # fmt: skip
    answers = [(await receiver.post(p)).json() for p in payloads]
    assert [a.get("filtered", False) for a in answers] == [False, True, False, False, True]
    assert [r["type"] for r in receiver.sink.results()] == [
        "message.sent",
        "phone.connected",
        "phone.disconnected",
    ]
    filtered = "chatmaid_bridge_webhooks_filtered_total"
    assert receiver.metric(filtered, event="message.read") == 1
    assert receiver.metric(filtered, event="message.received") == 1
    forged = await receiver.post(message_event(status="read"), secret="whsec_forged")
    assert forged.status_code == 401  # filtered types are still verified first
