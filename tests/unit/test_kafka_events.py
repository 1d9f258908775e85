"""Notify events: parsing, validation, idempotency keys, and the published schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatmaid import AsyncChatmaidClient
from chatmaid_kafka.events import (
    REPLAY_KEY_HEADER,
    InvalidEventError,
    NotifyEvent,
    idempotency_key,
    notify_event_schema,
    parse_notify_event,
)
from chatmaid_kafka.records import Headers, SourceRecord, result_record_schema

PACKAGE = Path(__file__).resolve().parents[2] / "bridges" / "chatmaid_kafka"


def raw(**fields: Any) -> bytes:
    return json.dumps({"to": "+15557654321", "content": "Hello", **fields}).encode()


def test_a_minimal_event_parses() -> None:
    event = parse_notify_event(raw())
    assert event.to == "+15557654321"
    assert event.content == "Hello"
    assert event.sender is None


def test_camel_case_fields_and_metadata_are_kept() -> None:
    event = parse_notify_event(
        raw(
            eventId="order-1",
            mediaUrls=["https://example.com/a.png"],
            fromPhoneId="phone_1",
            idempotencyKey="my-key",
            metadata={"orderId": 7784, "nested": {"a": [1, 2]}},
        )
    )
    assert event.event_id == "order-1"
    assert event.media_urls == ["https://example.com/a.png"]
    assert event.sender == "phone_1"
    assert event.idempotency_key == "my-key"
    assert event.metadata == {"orderId": 7784, "nested": {"a": [1, 2]}}


def test_from_as_an_e164_sender() -> None:
    assert parse_notify_event(raw(**{"from": "+15551234567"})).sender == "+15551234567"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (None, "no value"),
    ],
)
def test_undecodable_values_fail_at_the_deserialize_stage(value: bytes | None, needle: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_notify_event(value)
    assert caught.value.stage == "deserialize"
    assert needle in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"to": "5557654321"}, "E.164"),
        ({"content": None}, "content or mediaUrls is required"),
        ({"content": "x" * 4097}, "at most 4096"),
        ({"mediaUrls": ["http://insecure.example/a.png"], "content": None}, "HTTPS"),
        ({"idempotencyKey": "k" * 65}, "at most 64"),
        ({"fromPhoneId": "p1", "from": "+15551234567"}, "not both"),
        ({"from": "+1"}, "from must be an E.164 number"),
        ({"contnet": "typo"}, "contnet: Extra inputs are not permitted"),
        ({"metadata": [1]}, "metadata"),
    ],
)
def test_invalid_events_fail_at_the_validate_stage(fields: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_notify_event(raw(**fields))
    assert caught.value.stage == "validate"
    assert needle in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_notify_event(json.dumps({"to": "123"}).encode())
    message = str(caught.value)
    assert "E.164" in message
    assert "content or mediaUrls is required" in message


def test_idempotency_key_prefers_the_event_key_then_a_replay_then_event_id_then_the_record() -> (
    None
):
    scope = AsyncChatmaidClient("sk_test_events0123456789", requests_per_minute=None)
    derive = scope.idempotency_key
    explicit = parse_notify_event(raw(eventId="e1", idempotencyKey="mine"))
    by_event = parse_notify_event(raw(eventId="e1"))
    anonymous = parse_notify_event(raw())

    def at(topic: str, partition: int, offset: int, headers: Headers | None = None) -> SourceRecord:
        return SourceRecord(topic, partition, offset, None, None, headers or [])

    assert idempotency_key(explicit, at("t", 0, 5), derive=derive) == "mine"
    replayed = at("t", 0, 5, [(REPLAY_KEY_HEADER, b"kafka-first")])
    assert idempotency_key(by_event, replayed, derive=derive) == "kafka-first"
    key = idempotency_key(by_event, at("t", 0, 5), derive=derive)
    assert key.startswith("kafka-")
    assert len(key) <= 64
    # The same eventId gives the same key wherever and whenever it is read.
    assert idempotency_key(by_event, at("other-topic", 3, 99), derive=derive) == key
    by_record = idempotency_key(anonymous, at("t", 0, 5), derive=derive)
    assert by_record != key
    assert idempotency_key(anonymous, at("t", 0, 5), derive=derive) == by_record
    assert idempotency_key(anonymous, at("t", 0, 6), derive=derive) != by_record
    assert idempotency_key(anonymous, at("t", 1, 5), derive=derive) != by_record
    # Another environment or deployment namespace never shares a key.
    live = AsyncChatmaidClient("sk_live_events0123456789", requests_per_minute=None)
    staging = AsyncChatmaidClient(
        "sk_test_events0123456789", requests_per_minute=None, idempotency_namespace="staging"
    )
    for other in (live, staging):
        assert idempotency_key(by_event, at("t", 0, 5), derive=other.idempotency_key) != key


def test_the_schema_files_are_up_to_date() -> None:
    """Regenerate with ``chatmaid-bridge schema [--results] > <file>``."""
    notify = json.loads((PACKAGE / "notify-event.schema.json").read_text())
    results = json.loads((PACKAGE / "result-record.schema.json").read_text())
    assert notify == notify_event_schema()
    assert results == result_record_schema()


def test_the_schema_states_the_rules_the_model_enforces() -> None:
    schema = notify_event_schema()
    properties = schema["properties"]
    assert schema["required"] == ["to"]
    assert schema["additionalProperties"] is False
    assert {"required": ["content"]} in schema["anyOf"]
    assert properties["content"]["maxLength"] == 4096
    assert properties["idempotencyKey"]["maxLength"] == 64
    assert set(properties) == {
        field.alias or name for name, field in NotifyEvent.model_fields.items()
    }
