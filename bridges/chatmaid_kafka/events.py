"""The notify event: what a team publishes to ask for one WhatsApp message.

The wire format is JSON (UTF-8), published as ``notify-event.schema.json`` beside this
module (``chatmaid-bridge schema`` prints it). Field rules are the core's
(``chatmaid.send_problems``); this module only adds the event's own fields.

Example::

    {"eventId": "order-7784-confirmed", "to": "+15557654321",
     "content": "Order 7784 confirmed", "metadata": {"orderId": 7784}}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from chatmaid import is_e164, send_problems

from .records import SourceRecord

#: Prefix of the idempotency keys the bridge derives (``kafka-<48 hex>``).
KEY_PREFIX = "kafka"
#: Header of a replayed dead letter: the idempotency key its first sends used.
REPLAY_KEY_HEADER = "chatmaid.replay.idempotency-key"


class InvalidEventError(ValueError):
    """A record is not a valid notify event. ``stage`` is ``deserialize`` or ``validate``."""

    def __init__(self, stage: str, problems: list[str]) -> None:
        self.stage = stage
        self.problems = problems
        super().__init__("; ".join(problems))


class NotifyEvent(BaseModel):
    """One notify event. Give ``content`` and/or ``mediaUrls``, and at most one sender."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        title="Chatmaid notify event",
        field_title_generator=lambda name, info: info.alias or to_camel(name),
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://chatmaid.net/schemas/kafka/notify-event.schema.json",
            "anyOf": [{"required": ["content"]}, {"required": ["mediaUrls"]}],
            "not": {"required": ["fromPhoneId", "from"]},
        },
    )

    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="Your ID of this event. The idempotency key is derived from it, so a "
        "redelivered event never sends twice; it is carried to every result record.",
    )
    to: str = Field(
        description="Recipient in E.164 format.",
        json_schema_extra={"pattern": r"^\+[1-9]\d{6,14}$"},
    )
    content: str | None = Field(
        None, description="Text, at most 4096 characters.", json_schema_extra={"maxLength": 4096}
    )
    media_urls: list[str] | None = Field(
        None,
        description="Public https URLs of media.",
        json_schema_extra={"items": {"type": "string", "format": "uri", "pattern": "^https://"}},
    )
    from_phone_id: str | None = Field(
        None, min_length=1, description="Sender: a phone ID of your account."
    )
    from_: str | None = Field(
        None,
        alias="from",
        description="Sender: an E.164 number of your account (resolved through the phone list).",
        json_schema_extra={"pattern": r"^\+[1-9]\d{6,14}$"},
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        description="Explicit idempotency key; wins over the one derived from eventId.",
        json_schema_extra={"maxLength": 64},
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Passed through untouched to the result records."
    )

    @model_validator(mode="after")
    def _sendable(self) -> NotifyEvent:
        problems = send_problems(
            to=self.to,
            content=self.content,
            media_urls=self.media_urls,
            idempotency_key=self.idempotency_key,
        )
        if self.from_phone_id is not None and self.from_ is not None:
            problems.append("give fromPhoneId or from, not both")
        if self.from_ is not None and not is_e164(self.from_):
            problems.append(f"from must be an E.164 number; got {self.from_!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def sender(self) -> str | None:
        """The sender the event names (phone ID or E.164 number), if any."""
        return self.from_phone_id or self.from_


def parse_notify_event(value: bytes | None) -> NotifyEvent:
    """Parse a record value; raises ``InvalidEventError`` listing every problem."""
    if value is None:
        raise InvalidEventError("deserialize", ["the record has no value (a tombstone?)"])
    try:
        payload = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventError("deserialize", [f"value is not UTF-8 JSON: {exc}"]) from None
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise InvalidEventError("deserialize", [f"value must be a JSON object, got {kind}"])
    try:
        return NotifyEvent.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEventError("validate", _problems(exc)) from None


def idempotency_key(event: NotifyEvent, source: SourceRecord, *, derive: Callable[..., str]) -> str:
    """The send's key: the event's own, else a replayed dead letter's, else derived from
    ``eventId``, else from the record's topic, partition and offset.

    Derived keys are deterministic, so a redelivery after a crash or a rebalance reuses
    the key and the API answers with the original message instead of sending again.
    ``derive`` is the client's ``idempotency_key``: the key's environment and the
    deployment namespace are part of it.
    """
    if event.idempotency_key is not None:
        return event.idempotency_key
    for name, value in source.headers:
        if name == REPLAY_KEY_HEADER:
            return value.decode()
    if event.event_id is not None:
        return derive("event", event.event_id, prefix=KEY_PREFIX)
    return derive("record", source.topic, source.partition, source.offset, prefix=KEY_PREFIX)


def notify_event_schema() -> dict[str, Any]:
    """The JSON Schema of notify events, as published in ``notify-event.schema.json``."""
    return NotifyEvent.model_json_schema(by_alias=True)


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return problems
