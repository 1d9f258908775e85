"""Typed models of the Chatmaid API's documented payloads.

Every model keeps fields the docs do not list (``extra="allow"``) and takes status
values as plain strings, so a field or status the live API adds tomorrow is kept
rather than breaking today's client. The sandbox serialises the same models, so the
client and the local twin share one definition of the contract.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PrivateAttr, field_validator
from pydantic.alias_generators import to_camel


def format_timestamp(value: datetime) -> str:
    """Render a datetime the way the API does: UTC, milliseconds, a trailing ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class MessageStatus:
    """Message statuses the docs name. Others (``delivered``, ``read``...) may appear."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    READ = "read"

    #: Statuses after which a message does not change again in a way a sender waits for.
    TERMINAL = frozenset({SENT, FAILED, DELIVERED, READ})


class ApiModel(BaseModel):
    """Base for API payloads: camelCase on the wire, snake_case in Python, extras kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=True,
    )

    def to_api(self) -> dict[str, Any]:
        """The payload as the API writes it (camelCase keys, API timestamps)."""
        return self.model_dump(by_alias=True, mode="json")


class Message(ApiModel):
    """A message, from send, get or list. List items carry fewer fields."""

    id: str
    status: str
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    content: str | None = None
    media_urls: list[str] | None = None
    environment: str | None = None
    created_at: Timestamp | None = None
    sent_at: Timestamp | None = None
    failed_at: Timestamp | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the status is one a sender stops waiting on."""
        return self.status in MessageStatus.TERMINAL

    @property
    def is_failed(self) -> bool:
        """True when delivery failed."""
        return self.status == MessageStatus.FAILED


class Pagination(ApiModel):
    """Page metadata of a list response."""

    page: int
    limit: int
    total: int
    total_pages: int


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(ApiModel, Generic[ItemT]):
    """One page of a paginated list (``data.data[]`` and ``data.pagination``)."""

    data: list[ItemT]
    pagination: Pagination

    @property
    def has_next(self) -> bool:
        """True when a later page exists."""
        return self.pagination.page < self.pagination.total_pages


class PhoneNumber(ApiModel):
    """A sender phone number of the account."""

    id: str
    phone_number: str
    connection_status: str
    display_name: str | None = None
    last_connected_at: Timestamp | None = None
    last_disconnected_at: Timestamp | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @property
    def is_connected(self) -> bool:
        """True when WhatsApp reports the phone connected."""
        return self.connection_status == "connected"


class PhoneStatus(ApiModel):
    """The live connection state of one phone number."""

    id: str
    phone_number: str
    connection_status: str
    last_connected_at: Timestamp | None = None
    last_disconnected_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class AccountStats(ApiModel):
    """Aggregate counters of an account."""

    api_keys: int
    phone_numbers: int
    messages: int


class Account(ApiModel):
    """The account that owns the API key."""

    account_id: str
    name: str
    email: str
    subscription_status: str
    stats: AccountStats


class MessageCounts(ApiModel):
    """Messages by status over a usage period."""

    total: int
    pending: int
    sent: int
    failed: int


class RequestCounts(ApiModel):
    """API requests over a usage period."""

    total: int
    successful: int
    failed: int


class Usage(ApiModel):
    """Usage metrics for a day, week or month."""

    period: str
    start_date: Timestamp
    end_date: Timestamp
    messages: MessageCounts
    api_requests: RequestCounts


class SendMessageRequest(ApiModel):
    """The body of ``POST /v1/messages/send``."""

    from_phone_id: str
    to: str
    content: str | None = None
    media_urls: list[str] | None = None
    idempotency_key: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The body as sent: optional fields left out when unset."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class MessageEventData(ApiModel):
    """``data`` of ``message.sent``, ``.failed``, ``.delivered`` and ``.read`` events."""

    message_id: str
    status: str
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    environment: str | None = None
    sent_at: Timestamp | None = None
    failed_at: Timestamp | None = None
    error_code: str | None = None
    error_message: str | None = None


class InboundMessageEventData(ApiModel):
    """``data`` of ``message.received``: a reply to one of the account's phones."""

    message_id: str
    from_: str = Field(alias="from")
    to: str | None = None
    content: str | None = None
    type: str | None = None
    received_at: Timestamp | None = None


class OutgoingMessageEventData(ApiModel):
    """``data`` of ``message.outgoing``: typed on the phone itself, not sent by the API."""

    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    content: str | None = None
    type: str | None = None
    sent_at: Timestamp | None = None


class PhoneEventData(ApiModel):
    """``data`` of ``phone.connected`` and ``phone.disconnected`` events.

    The docs show ``id`` and ``connectionStatus``; the live API is known to send
    ``phoneId``, ``status`` and ``displayName`` instead. Both shapes parse.
    """

    id: str | None = None
    phone_id: str | None = None
    phone_number: str | None = None
    display_name: str | None = None
    connection_status: str | None = None
    status: str | None = None
    last_connected_at: Timestamp | None = None
    last_disconnected_at: Timestamp | None = None

    @property
    def phone(self) -> str | None:
        """The phone's ID, whichever shape named it."""
        return self.id or self.phone_id


class WebhookEvent(ApiModel):
    """A webhook delivery of an event type this version does not model: ``data`` as sent.

    After ``verify``/``parse_event``, ``raw_body`` and ``payload`` hold the body exactly
    as it arrived and its JSON as parsed, so adapters can forward what Chatmaid sent.
    """

    event: str
    timestamp: Timestamp
    data: dict[str, Any] = Field(default_factory=dict)
    _raw_body: bytes = PrivateAttr(default=b"")
    _payload: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def raw_body(self) -> bytes:
        """The body as received."""
        return self._raw_body

    @property
    def payload(self) -> dict[str, Any]:
        """The body's JSON as parsed, untouched by the model."""
        return self._payload


class MessageEvent(WebhookEvent):
    """``message.sent``, ``message.failed``, ``message.delivered`` or ``message.read``."""

    data: MessageEventData  # type: ignore[assignment]


class InboundMessageEvent(WebhookEvent):
    """``message.received``."""

    data: InboundMessageEventData  # type: ignore[assignment]


class OutgoingMessageEvent(WebhookEvent):
    """``message.outgoing``."""

    data: OutgoingMessageEventData  # type: ignore[assignment]


class PhoneEvent(WebhookEvent):
    """``phone.connected`` or ``phone.disconnected``."""

    data: PhoneEventData  # type: ignore[assignment]


WEBHOOK_EVENT_TYPES: dict[str, type[WebhookEvent]] = {
    "message.sent": MessageEvent,
    "message.failed": MessageEvent,
    "message.delivered": MessageEvent,
    "message.read": MessageEvent,
    "message.received": InboundMessageEvent,
    "message.outgoing": OutgoingMessageEvent,
    "phone.connected": PhoneEvent,
    "phone.disconnected": PhoneEvent,
}


class ErrorEnvelope(ApiModel):
    """The error body: the standard envelope, or the shorter 429 body."""

    success: bool = False
    error: str = "Error"
    message: list[str] = Field(default_factory=list)
    status_code: int | None = None
    timestamp: str | None = None
    path: str | None = None
    retry_after: float | None = None

    @field_validator("message", mode="before")
    @classmethod
    def _message_as_list(cls, value: Any) -> Any:
        # Some error paths answer a single string; keep the list shape for callers.
        if value is None:
            return []
        return [value] if isinstance(value, str) else value
