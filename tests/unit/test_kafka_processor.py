"""One consumed record to its outcome, against a mock API (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from chatmaid import AsyncChatmaidClient, RetryPolicy
from chatmaid_kafka.failures import ApiHalt
from chatmaid_kafka.metrics import BridgeMetrics
from chatmaid_kafka.offsets import OffsetTracker, PartitionId
from chatmaid_kafka.processor import EventProcessor, OutputTopics
from chatmaid_kafka.producer import Done, Publisher
from chatmaid_kafka.records import (
    Consumed,
    Correlation,
    OutgoingRecord,
    SourceRecord,
    error_headers,
)

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
    """A mock API: each send takes the next of ``failures`` (a status, or "drop" for a
    dropped connection), then succeeds; records requests."""

    def __init__(self) -> None:
        self.failures: list[int | str] = []
        self.messages: dict[int, list[str]] = {}
        self.phones = PHONES
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/phone-numbers":
            return httpx.Response(200, json={"success": True, "data": self.phones})
        failure = self.failures.pop(0) if self.failures else None
        if failure == "drop":
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        if failure == 429:
            return httpx.Response(
                429, json={"success": False, "error": "Rate limit exceeded", "retryAfter": 60}
            )
        if isinstance(failure, int):
            return httpx.Response(
                failure,
                json={
                    "success": False,
                    "error": "Error",
                    "message": self.messages.get(failure, [f"refused with {failure}"]),
                    "statusCode": failure,
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

    def send(
        self,
        records: Sequence[OutgoingRecord],
        on_done: Done,
        *,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        if wanted is not None and not wanted():
            return
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
        self.waits: list[float] = []  # the processor's waits between rounds of attempts
        self.blockages: list[tuple[float, str] | None] = []

        async def no_sleep(_seconds: float) -> None:
            return None

        async def between_rounds(seconds: float) -> None:
            self.waits.append(seconds)
            self.blockages.append(self.tracker.blockage())

        self.client = AsyncChatmaidClient(
            KEY,
            base_url="https://api.test",
            transport=httpx.MockTransport(self.api),
            requests_per_minute=None,
            max_retries=2,
            sleep=no_sleep,
            retry=RetryPolicy(max_attempts=3, max_rate_limit_waits=1),
        )
        self.publisher = FakePublisher(failures)
        self.metrics = BridgeMetrics()
        self.fatal: list[BaseException] = []
        self.correlations: dict[str, Correlation] = {}
        self.halt = ApiHalt(0.01)
        self.processor = EventProcessor(
            client=self.client,
            publisher=self.publisher,
            topics=TOPICS,
            metrics=self.metrics,
            halt=self.halt,
            on_fatal=self.fatal.append,
            on_correlation=self.correlations.__setitem__,
            default_from=default,
            sleep=between_rounds,
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
    ("status", "error_class"), [(400, "BadRequestError"), (404, "NotFoundError")]
)
async def test_refusals_of_the_event_are_dead_lettered_without_retry(
    status: int, error_class: str
) -> None:
    h = Harness()
    h.api.failures = [status]
    await h.handle(event(eventId="e-refused"))
    _, errors = h.dead_letter()
    assert errors["stage"] == "send"
    assert errors["http.status"] == str(status)
    assert errors["class.name"] == error_class
    assert errors["event.id"] == "e-refused"
    assert errors["idempotency.key"] == h.api.sends()[0]["idempotencyKey"]
    assert f"refused with {status}" in errors["exception.message"]
    assert len(h.api.sends()) == 1


@pytest.mark.parametrize(
    "failures",
    [
        [503] * 7,  # three rounds of 5xx (max_attempts=3), then accepted
        ["drop"] * 4,  # connections dropped after the API may have created the message
        [429, 429, 429, 429],  # 429s beyond the core's waits: flow control, not failure
        [503, "drop", 429, 500, 429, "drop"],
    ],
)
async def test_transient_faults_never_dead_letter_the_event(failures: list[int | str]) -> None:
    h = Harness()
    h.api.failures = list(failures)
    await h.handle(event(eventId="e-flaky"))
    assert h.records("dlq") == []
    [result] = h.records("results")
    assert json.loads(result.value or b"")["eventId"] == "e-flaky"
    sends = h.api.sends()
    assert len(sends) == len(failures) + 1
    assert len({s["idempotencyKey"] for s in sends}) == 1  # every attempt: the same key
    assert h.waits  # between rounds the event waited, its partition blocked meanwhile
    assert all(blockage is not None for blockage in h.blockages)
    assert h.tracker.blockage() is None
    assert h.tracker.committable() == 1


async def test_a_429_round_waits_for_the_bodys_retry_after() -> None:
    h = Harness()
    h.api.failures = [429, 429]  # the core waits once (max_rate_limit_waits=1), then gives up
    await h.handle(event())
    assert h.waits == [60.0]  # the documented body field, no Retry-After header
    blockage = h.blockages[0]
    assert blockage is not None
    assert "RateLimitedError" in blockage[1]
    assert len(h.records("results")) == 1


async def test_an_event_waiting_to_be_sent_again_is_let_go_when_its_partition_stops() -> None:
    h = Harness()
    h.api.failures = [503] * 100

    async def stop_while_waiting(seconds: float) -> None:
        h.tracker.stop()

    h.processor._sleep = stop_while_waiting
    await h.handle(event())
    assert h.publisher.sent == []  # no outcome: the next owner sends it, with the same key
    assert h.tracker.committable() == 0
    assert h.tracker.running == 0
    assert h.tracker.blockage() is None


async def test_an_unknown_sender_number_is_dead_lettered_at_resolve() -> None:
    h = Harness()
    await h.handle(event(**{"from": "+15559999999"}))
    _, errors = h.dead_letter()
    assert errors["stage"] == "resolve"
    assert errors["class.name"] == "NoConnectedPhoneError"


@pytest.mark.parametrize(
    "cause",
    ["403", "phone not connected", "no connected phone"],
)
async def test_faults_of_the_account_halt_instead_of_dead_lettering(cause: str) -> None:
    h = Harness()
    if cause == "403":
        h.api.failures = [403, 403]
    elif cause == "phone not connected":
        h.api.failures = [400]
        h.api.messages[400] = ["Phone +15550000002 is not connected"]
    else:
        h.api.phones = [dict(PHONES[1], connectionStatus="disconnected")]
    seen: list[str | None] = []

    async def watch_the_halt() -> None:
        while not h.publisher.sent:
            seen.append(h.halt.reason)
            if cause == "no connected phone" and len(seen) == 3:
                h.api.phones = PHONES  # the phone is connected again
            await asyncio.sleep(0.005)

    await asyncio.gather(h.handle(event(eventId="e-halt")), watch_the_halt())
    assert any(reason is not None for reason in seen)  # the consumer was told to pause all
    assert h.halt.reason is None  # the probe succeeded: resumed
    assert h.records("dlq") == []
    [result] = h.records("results")
    assert json.loads(result.value or b"")["eventId"] == "e-halt"
    assert h.fatal == []


async def test_an_idempotency_conflict_is_dead_lettered_with_both_versions() -> None:
    h = Harness()
    original = message({"idempotencyKey": "kafka-shared-key0", "to": "+15550009999"})

    def taken(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/phone-numbers":
            return httpx.Response(200, json={"success": True, "data": PHONES})
        return httpx.Response(201, json={"success": True, "data": original})

    h.client = AsyncChatmaidClient(
        KEY, base_url="https://api.test", transport=httpx.MockTransport(taken),
        requests_per_minute=None,
    )  # fmt: skip
    h.processor._client = h.client
    await h.handle(event(idempotencyKey="kafka-shared-key0"))
    _, errors = h.dead_letter()
    assert errors["stage"] == "idempotency"
    assert errors["class.name"] == "IdempotencyConflictError"
    assert errors["idempotency.key"] == "kafka-shared-key0"
    assert errors["idempotency.message.id"] == original["id"]
    differences = json.loads(errors["idempotency.differences"])
    assert differences["to"] == {"asked": "+15557654321", "returned": "+15550009999"}


async def test_a_401_stops_the_bridge_and_leaves_the_offset_uncommitted() -> None:
    h = Harness()
    h.api.failures = [401]
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

    async def broken(event: object, key: str) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(h.processor, "_send", broken)
    await h.handle(event())
    _, errors = h.dead_letter()
    assert errors["stage"] == "internal"
    assert errors["class.name"] == "RuntimeError"
    assert h.tracker.committable() == 1
