"""One consumed record to its outcome, against a mock API (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from chatmaid import AsyncChatmaidClient
from chatmaid_kafka.metrics import BridgeMetrics
from chatmaid_kafka.offsets import OffsetTracker, PartitionId
from chatmaid_kafka.processor import Consumed, EventProcessor, OutputTopics
from chatmaid_kafka.producer import Done, Publisher
from chatmaid_kafka.records import Correlation, OutgoingRecord, SourceRecord, error_headers
from chatmaid_kafka.senders import SenderResolver

KEY = "sk_test_processor0123456789"
TOPICS = OutputTopics("results", "dlq", "correlation")
PHONES = [
    {"id": "phone_off", "phoneNumber": "+15550000001", "connectionStatus": "disconnected"},
    {"id": "phone_on", "phoneNumber": "+15550000002", "connectionStatus": "connected"},
]


def message(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"msg_{body['idempotencyKey'][-8:]}",
        "from": "+15550000002",
        "to": body["to"],
        "content": body.get("content"),
        "environment": "test",
        "status": "sent",
        "createdAt": "2026-02-06T14:18:33.000Z",
    }


class Api:
    """A mock API: sends succeed unless ``send_status`` says otherwise; records requests."""

    def __init__(self) -> None:
        self.send_status = 201
        self.raise_transport = False
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/phone-numbers":
            return httpx.Response(200, json={"success": True, "data": PHONES})
        if self.raise_transport:
            raise httpx.ConnectError("connection refused", request=request)
        if self.send_status != 201:
            return httpx.Response(
                self.send_status,
                json={
                    "success": False,
                    "error": "Error",
                    "message": [f"refused with {self.send_status}"],
                    "statusCode": self.send_status,
                    "path": request.url.path,
                },
            )
        body = json.loads(request.content)
        return httpx.Response(201, json={"success": True, "data": message(body)})

    def sends(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == "/v1/messages/send"]

    def lists(self) -> int:
        return sum(1 for r in self.requests if r.url.path == "/v1/phone-numbers")


class FakePublisher(Publisher):
    """Acknowledges at once, or fails the first ``failures`` sends."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(producer=None)
        self.failures = failures
        self.sent: list[OutgoingRecord] = []
        self.attempts = 0

    def send(self, records: Sequence[OutgoingRecord], on_done: Done) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            on_done(RuntimeError("broker down"))
            return
        self.sent.extend(records)
        on_done(None)


class Harness:
    def __init__(self, default: str | None = None, failures: int = 0) -> None:
        self.api = Api()

        async def no_sleep(_seconds: float) -> None:
            return None

        self.client = AsyncChatmaidClient(
            KEY,
            base_url="https://api.test",
            transport=httpx.MockTransport(self.api),
            requests_per_minute=None,
            max_retries=2,
            sleep=no_sleep,
        )
        self.publisher = FakePublisher(failures)
        self.metrics = BridgeMetrics()
        self.fatal: list[BaseException] = []
        self.correlations: dict[str, Correlation] = {}
        self.processor = EventProcessor(
            client=self.client,
            senders=SenderResolver(self.client, default),
            publisher=self.publisher,
            topics=TOPICS,
            metrics=self.metrics,
            on_fatal=self.fatal.append,
            on_correlation=self.correlations.__setitem__,
        )
        self.tracker = OffsetTracker(PartitionId("notify", 0))
        self.offset = 0

    async def handle(self, value: bytes | None, key: bytes | None = b"key") -> Consumed:
        source = SourceRecord("notify", 0, self.offset, key, value, [("trace", b"abc")])
        self.offset += 1
        self.tracker.add(source.offset)
        consumed = Consumed(self.tracker, source)
        await self.processor.handle(consumed)
        return consumed

    def records(self, topic: str) -> list[OutgoingRecord]:
        return [r for r in self.publisher.sent if r.topic == topic]

    def dead_letter(self) -> tuple[OutgoingRecord, dict[str, str]]:
        [record] = self.records("dlq")
        return record, error_headers(record.headers)


def event(**fields: Any) -> bytes:
    return json.dumps({"to": "+15557654321", "content": "Hi", **fields}).encode()


async def test_an_accepted_send_publishes_its_result_and_correlation() -> None:
    h = Harness()
    await h.handle(event(eventId="order-1", metadata={"orderId": 1}, fromPhoneId="phone_x"))
    [send] = h.api.sends()
    assert send["fromPhoneId"] == "phone_x"
    assert send["idempotencyKey"].startswith("kafka-")
    [result] = h.records("results")
    [correlation] = h.records("correlation")
    accepted = json.loads(result.value or b"")
    assert accepted["type"] == "message.accepted"
    assert accepted["source"] == "api"
    assert accepted["eventId"] == "order-1"
    assert accepted["metadata"] == {"orderId": 1}
    assert accepted["status"] == "sent"
    assert accepted["idempotencyKey"] == send["idempotencyKey"]
    assert result.key == correlation.key == accepted["messageId"].encode()
    assert json.loads(correlation.value or b"")["eventId"] == "order-1"
    assert h.tracker.committable() == 1
    assert h.metrics.events_sent._value.get() == 1
    assert h.correlations[accepted["messageId"]].event_id == "order-1"


async def test_a_redelivered_event_is_sent_with_the_same_key() -> None:
    h = Harness()
    await h.handle(event(eventId="order-1"))
    await h.handle(event(eventId="order-1"))
    first, second = h.api.sends()
    assert first["idempotencyKey"] == second["idempotencyKey"]


async def test_senders_resolve_through_the_cached_phone_list() -> None:
    h = Harness()
    await h.handle(event(**{"from": "+15550000002"}))
    await h.handle(event(**{"from": "+15550000002"}))
    await h.handle(event())  # no sender, no default: the first connected phone
    assert [s["fromPhoneId"] for s in h.api.sends()] == ["phone_on"] * 3
    assert h.api.lists() == 1


async def test_a_burst_with_a_cold_cache_fetches_the_phone_list_once() -> None:
    h = Harness()
    events = [event(**{"from": "+15550000002"}) for _ in range(20)]
    await asyncio.gather(*(h.handle(value) for value in events))
    assert len(h.api.sends()) == 20
    assert h.api.lists() == 1


async def test_the_configured_default_sender_is_used() -> None:
    h = Harness(default="+15550000001")
    await h.handle(event())
    assert h.api.sends()[0]["fromPhoneId"] == "phone_off"


async def test_invalid_events_are_dead_lettered_with_their_original_record() -> None:
    h = Harness()
    await h.handle(b"{not json", key=b"k1")
    record, errors = h.dead_letter()
    assert (record.key, record.value) == (b"k1", b"{not json")
    assert ("trace", b"abc") in record.headers
    assert errors["stage"] == "deserialize"
    assert errors["topic"] == "notify"
    assert errors["partition"] == "0"
    assert errors["offset"] == "0"
    assert errors["class.name"] == "InvalidEventError"
    assert "not UTF-8 JSON" in errors["exception.message"]
    assert "http.status" not in errors
    assert h.api.sends() == []
    assert h.tracker.committable() == 1
    assert h.metrics.events_dead_lettered.labels("deserialize")._value.get() == 1


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, "BadRequestError"), (403, "PermissionDeniedError"), (404, "NotFoundError")],
)
async def test_refused_sends_are_dead_lettered_without_retry(status: int, error_class: str) -> None:
    h = Harness()
    h.api.send_status = status
    await h.handle(event(eventId="e-refused"))
    _, errors = h.dead_letter()
    assert errors["stage"] == "send"
    assert errors["http.status"] == str(status)
    assert errors["class.name"] == error_class
    assert errors["event.id"] == "e-refused"
    assert f"refused with {status}" in errors["exception.message"]
    assert len(h.api.sends()) == 1


async def test_retryable_failures_are_dead_lettered_once_the_core_gives_up() -> None:
    h = Harness()
    h.api.send_status = 503
    await h.handle(event())
    _, errors = h.dead_letter()
    assert errors["class.name"] == "ServerError"
    assert errors["http.status"] == "503"
    assert len(h.api.sends()) == 3  # max_retries=2: three attempts, same key
    assert len({s["idempotencyKey"] for s in h.api.sends()}) == 1


async def test_transport_failures_are_dead_lettered_too() -> None:
    h = Harness()
    h.api.raise_transport = True
    await h.handle(event())
    _, errors = h.dead_letter()
    assert errors["class.name"] == "ChatmaidTransportError"
    assert errors["stage"] == "send"


async def test_an_unknown_sender_number_is_dead_lettered_at_resolve() -> None:
    h = Harness()
    await h.handle(event(**{"from": "+15559999999"}))
    _, errors = h.dead_letter()
    assert errors["stage"] == "resolve"
    assert errors["class.name"] == "NoConnectedPhoneError"


async def test_a_401_stops_the_bridge_and_leaves_the_offset_uncommitted() -> None:
    h = Harness()
    h.api.send_status = 401
    await h.handle(event())
    assert len(h.fatal) == 1
    assert h.publisher.sent == []
    assert h.tracker.committable() == 0
    assert h.tracker.running == 0


async def test_an_unacknowledged_outcome_is_produced_again() -> None:
    h = Harness(failures=1)
    await h.handle(event())
    assert h.tracker.committable() == 0  # not acknowledged yet
    for _ in range(100):
        await asyncio.sleep(0.01)
        if h.tracker.committable() == 1:
            break
    assert h.tracker.committable() == 1
    assert h.publisher.attempts == 2
    assert len(h.records("results")) == 1


async def test_a_stopped_partition_starts_no_send() -> None:
    h = Harness()
    h.tracker.stop()
    await h.handle(event())
    assert h.api.sends() == []
    assert h.publisher.attempts == 0


async def test_a_bug_dead_letters_the_event_instead_of_stalling_its_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()

    async def broken(event: object) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(h.processor._senders, "phone_id", broken)
    await h.handle(event())
    _, errors = h.dead_letter()
    assert errors["stage"] == "internal"
    assert errors["class.name"] == "RuntimeError"
    assert h.tracker.committable() == 1
