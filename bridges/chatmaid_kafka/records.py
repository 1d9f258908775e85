"""The records the bridge writes: results, correlations and dead letters.

- Result records (results topic, keyed by messageId, by phone ID for phone events, by
  the other party's number for inbound and outgoing messages): ``message.accepted`` from
  the API answer, then one record per verified webhook, whatever its event type, its
  ``data`` as received. JSON, schema in ``result-record.schema.json``.
- Correlation records (compacted topic, keyed by messageId): the eventId and metadata
  of the event that caused a message, so a receiver on another host can label webhooks.
- Dead letters (DLQ topic): the original key, value and headers, plus ``chatmaid.errors.*``
  headers saying where the record came from and why it failed (as Kafka Connect does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from chatmaid import (
    ChatmaidAPIError,
    IdempotencyConflictError,
    InboundMessageEvent,
    Message,
    MessageEvent,
    OutgoingMessageEvent,
    PhoneEvent,
    WebhookEvent,
)

from .offsets import OffsetTracker

Headers = list[tuple[str, bytes]]

#: Prefix of the error headers of a dead letter.
ERROR_HEADER_PREFIX = "chatmaid.errors."


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a consumed record came from, and what it held (for dead letters)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Consumed:
    """A record read from the notify topic, with the tracker of its partition."""

    tracker: OffsetTracker
    record: SourceRecord


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        field_title_generator=lambda name, info: info.alias or to_camel(name),
    )

    def to_bytes(self) -> bytes:
        """Compact JSON with camelCase keys."""
        return self.model_dump_json(by_alias=True).encode()


class Correlation(_Wire):
    """What the bridge knows about the event behind a message."""

    event_id: str | None = None
    idempotency_key: str | None = None
    metadata: dict[str, Any] | None = None


class ResultRecord(_Wire):
    """One outcome of a notify event, or a phone event, on the results topic."""

    model_config = ConfigDict(title="Chatmaid result record")

    type: str = Field(
        description="message.accepted, or the webhook's event: message.sent, .failed, "
        ".delivered, .read, .received, .outgoing, phone.*, any other the API sends"
    )
    source: Literal["api", "webhook"] = Field(description="api: the send's answer; webhook")
    event_id: str | None = Field(None, description="eventId of the notify event, when known")
    correlation_missing: bool = Field(
        False,
        description="true when the receiver waited for the message's eventId and none "
        "came: eventId and metadata are unknown (join on messageId)",
    )
    idempotency_key: str | None = Field(None, description="the send's idempotency key")
    message_id: str | None = Field(
        None, description="the message (msg_*), sent or received; null for phones"
    )
    phone_id: str | None = Field(None, description="the phone, for phone events")
    contact: str | None = Field(
        None,
        description="the other party's number: the sender of message.received, the "
        "recipient of message.outgoing",
    )
    status: str | None = Field(None, description="message or connection status")
    environment: str | None = Field(None, description="test or live")
    error_code: str | None = Field(None, description="set when the message failed")
    occurred_at: str = Field(description="when it happened, ISO 8601 UTC")
    metadata: dict[str, Any] | None = Field(None, description="the notify event's metadata")
    data: dict[str, Any] = Field(
        description="the API message, or the webhook's data exactly as received"
    )

    @property
    def key(self) -> bytes | None:
        """The Kafka key: the contact's number, else the messageId, else the phone ID."""
        ident = self.contact or self.message_id or self.phone_id
        return ident.encode() if ident else None


def accepted_record(message: Message, correlation: Correlation) -> ResultRecord:
    """The ``message.accepted`` record of a send the API accepted."""
    data = message.to_api()
    return ResultRecord(
        type="message.accepted",
        source="api",
        event_id=correlation.event_id,
        idempotency_key=correlation.idempotency_key,
        message_id=message.id,
        status=message.status,
        environment=message.environment,
        error_code=message.error_code,
        occurred_at=data.get("createdAt") or _now(),
        metadata=correlation.metadata,
        data=data,
    )


def webhook_record(event: WebhookEvent, correlation: Correlation | None) -> ResultRecord:
    """The record of a verified webhook: typed fields where its type is known, ``data``
    and ``occurredAt`` as received, labelled with its notify event when known."""
    known = correlation or Correlation()
    message_id = phone_id = contact = status = environment = error_code = None
    if isinstance(event, MessageEvent):
        message_id, status = event.data.message_id, event.data.status
        environment, error_code = event.data.environment, event.data.error_code
    elif isinstance(event, InboundMessageEvent):
        message_id, contact = event.data.message_id, event.data.from_
    elif isinstance(event, OutgoingMessageEvent):
        contact = event.data.to
    elif isinstance(event, PhoneEvent):
        phone_id, status = event.data.phone, event.data.connection_status or event.data.status
    sent = event.payload
    stamp = sent.get("timestamp")
    return ResultRecord(
        type=event.event,
        source="webhook",
        event_id=known.event_id,
        correlation_missing=correlation is None and webhook_message_id(event) is not None,
        idempotency_key=known.idempotency_key,
        message_id=message_id,
        phone_id=phone_id,
        contact=contact,
        status=status,
        environment=environment,
        error_code=error_code,
        occurred_at=stamp if isinstance(stamp, str) else _iso(event.timestamp),
        metadata=known.metadata,
        data=sent.get("data", {}),
    )


def webhook_message_id(event: WebhookEvent) -> str | None:
    """The messageId of a message the bridge may have sent (its correlation is looked up)."""
    return event.data.message_id if isinstance(event, MessageEvent) else None


def dead_letter(
    source: SourceRecord,
    topic: str,
    *,
    stage: str,
    error: BaseException,
    event_id: str | None = None,
    idempotency_key: str | None = None,
) -> OutgoingRecord:
    """The dead letter of ``source``: its key, value and headers plus the error headers.

    ``idempotency.key`` is the key its sends used, so a replay sends with it again; an
    ``IdempotencyConflictError`` adds the message holding the key and what differs.
    """
    errors: dict[str, str | None] = {
        "topic": source.topic,
        "partition": str(source.partition),
        "offset": str(source.offset),
        "stage": stage,
        "class.name": type(error).__name__,
        "exception.message": str(error),
        "http.status": (str(error.status_code) if isinstance(error, ChatmaidAPIError) else None),
        "event.id": event_id,
        "idempotency.key": idempotency_key,
        "timestamp": _now(),
    }
    if isinstance(error, IdempotencyConflictError):
        errors["idempotency.message.id"] = error.message.id
        errors["idempotency.differences"] = json.dumps(
            {name: {"asked": asked, "returned": got} for name, (asked, got) in
             error.differences.items()}, default=str,
        )  # fmt: skip
    kept = [(k, v) for k, v in source.headers if not k.startswith(ERROR_HEADER_PREFIX)]
    added = [
        (ERROR_HEADER_PREFIX + name, value.encode())
        for name, value in errors.items()
        if value is not None
    ]
    return OutgoingRecord(topic, source.key, source.value, kept + added)


#: Value bytes a dead letter keeps when its record is too large to produce.
FITTED_VALUE_BYTES = 16_384
#: Header of a result or correlation record whose ``data``/``metadata`` were dropped.
TRIMMED_HEADER = "chatmaid.trimmed"


def fit_record(record: OutgoingRecord) -> OutgoingRecord:
    """A producible stand-in for ``record``, too large for Kafka.

    A dead letter keeps its key and headers and the first ``FITTED_VALUE_BYTES`` of its
    value, saying so in ``chatmaid.errors.value.truncated`` and ``.value.size``; a
    result or correlation record drops ``data`` and ``metadata`` (header
    ``chatmaid.trimmed``, with ``chatmaid.original.size``).
    """
    size = str(len(record.value or b"")).encode()
    if any(name.startswith(ERROR_HEADER_PREFIX) for name, _ in record.headers):
        headers = [
            *record.headers,
            (ERROR_HEADER_PREFIX + "value.truncated", b"true"),
            (ERROR_HEADER_PREFIX + "value.size", size),
        ]
        value = (record.value or b"")[:FITTED_VALUE_BYTES]
        return OutgoingRecord(record.topic, record.key, value, headers)
    payload = json.loads(record.value or b"{}")
    dropped = [name for name in ("data", "metadata") if payload.get(name)]
    payload.update({name: {} if name == "data" else None for name in dropped})
    headers = [
        *record.headers,
        (TRIMMED_HEADER, ",".join(dropped).encode()),
        ("chatmaid.original.size", size),
    ]
    value = json.dumps(payload, separators=(",", ":")).encode()
    return OutgoingRecord(record.topic, record.key, value, headers)


def error_headers(headers: Headers) -> dict[str, str]:
    """The ``chatmaid.errors.*`` headers of a dead letter, by short name."""
    return {
        k.removeprefix(ERROR_HEADER_PREFIX): v.decode()
        for k, v in headers
        if k.startswith(ERROR_HEADER_PREFIX)
    }


def result_record_schema() -> dict[str, Any]:
    """The JSON Schema of result records, as published in ``result-record.schema.json``."""
    schema = ResultRecord.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://chatmaid.net/schemas/kafka/result-record.schema.json",
        **schema,
    }


def _now() -> str:
    return _iso(datetime.now(timezone.utc))


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z`` (a naive time is taken as UTC)."""
    utc = moment.replace(tzinfo=moment.tzinfo or timezone.utc).astimezone(timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
