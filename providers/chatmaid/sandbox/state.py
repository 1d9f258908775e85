"""The in-memory store: one account, its keys, phones, messages, webhooks and counters.

Records are plain mutable dataclasses; they render themselves through the core's
models (``to_api``), so the sandbox writes exactly what the client parses.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .._models import (
    Account,
    AccountStats,
    Message,
    MessageCounts,
    MessageEvent,
    MessageEventData,
    PhoneEvent,
    PhoneEventData,
    PhoneNumber,
    PhoneStatus,
    RequestCounts,
    format_timestamp,
)
from .options import Settings


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def new_id(prefix: str = "", hex_chars: int = 24) -> str:
    """A random identifier: ``prefix`` and ``hex_chars`` hex digits."""
    return prefix + os.urandom(hex_chars // 2).hex()


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API writes it, or ``None``."""
    return None if value is None else format_timestamp(value)


@dataclass(slots=True)
class AccountRecord:
    """The sandbox's single account."""

    id: str
    name: str
    email: str
    subscription_status: str = "active"


@dataclass(slots=True)
class ApiKeyRecord:
    """An API key. ``rate_limit`` is per minute; ``None`` means the sandbox-wide limit."""

    id: str
    key: str = field(repr=False)
    environment: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None = None
    rate_limit: int | None = None

    def expired(self, now: datetime) -> bool:
        """True once the key's expiry has passed."""
        return self.expires_at is not None and self.expires_at <= now

    def to_admin(self) -> dict[str, Any]:
        """The admin view, key included (these are sandbox keys, not secrets)."""
        return {
            "id": self.id,
            "key": self.key,
            "environment": self.environment,
            "scopes": sorted(self.scopes),
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.expires_at),
            "expired": self.expired(utcnow()),
            "rateLimit": self.rate_limit,
        }


@dataclass(slots=True)
class PhoneRecord:
    """A sender phone of the account."""

    id: str
    phone_number: str
    display_name: str
    connection_status: str
    created_at: datetime
    updated_at: datetime
    last_connected_at: datetime | None = None
    last_disconnected_at: datetime | None = None

    @property
    def connected(self) -> bool:
        """True while WhatsApp reports the phone connected."""
        return self.connection_status == "connected"

    def set_connected(self, connected: bool, now: datetime) -> bool:
        """Connect or disconnect; True if that changed anything."""
        if connected == self.connected:
            return False
        self.connection_status = "connected" if connected else "disconnected"
        if connected:
            self.last_connected_at = now
        else:
            self.last_disconnected_at = now
        self.updated_at = now
        return True

    def to_api(self) -> dict[str, Any]:
        """The phone as ``GET /v1/phone-numbers[/:id]`` answers it."""
        return PhoneNumber(
            id=self.id,
            phone_number=self.phone_number,
            display_name=self.display_name,
            connection_status=self.connection_status,
            last_connected_at=self.last_connected_at,
            last_disconnected_at=self.last_disconnected_at,
            created_at=self.created_at,
            updated_at=self.updated_at,
        ).to_api()

    def status_to_api(self) -> dict[str, Any]:
        """The phone as ``GET /v1/phone-numbers/:id/status`` answers it."""
        return PhoneStatus(
            id=self.id,
            phone_number=self.phone_number,
            connection_status=self.connection_status,
            last_connected_at=self.last_connected_at,
            last_disconnected_at=self.last_disconnected_at,
            updated_at=self.updated_at,
        ).to_api()

    def event(self) -> PhoneEvent:
        """The ``phone.connected`` or ``phone.disconnected`` event for the current state."""
        return PhoneEvent(
            event=f"phone.{self.connection_status}",
            timestamp=utcnow(),
            data=PhoneEventData(
                id=self.id,
                phone_number=self.phone_number,
                connection_status=self.connection_status,
                last_connected_at=self.last_connected_at,
                last_disconnected_at=self.last_disconnected_at,
            ),
        )


@dataclass(slots=True)
class MessageRecord:
    """A message and its lifecycle."""

    id: str
    phone_id: str
    sender: str
    to: str
    content: str | None
    media_urls: list[str]
    environment: str
    created_at: datetime
    status: str = "pending"
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    idempotency_key: str | None = None

    def mark_sent(self, now: datetime) -> None:
        """The message reached WhatsApp."""
        self.status, self.sent_at = "sent", now

    def mark_failed(self, now: datetime, code: str, reason: str) -> None:
        """Delivery failed for good."""
        self.status, self.failed_at = "failed", now
        self.error_code, self.error_message = code, reason

    def to_api(self) -> dict[str, Any]:
        """The message as send, get and list answer it."""
        return Message(
            id=self.id,
            status=self.status,
            from_=self.sender,
            to=self.to,
            content=self.content,
            media_urls=self.media_urls,
            environment=self.environment,
            created_at=self.created_at,
            sent_at=self.sent_at,
            failed_at=self.failed_at,
            error_code=self.error_code,
            error_message=self.error_message,
        ).to_api()

    def to_admin(self) -> dict[str, Any]:
        """The raw view: the API fields plus the sender's phone ID and idempotency key."""
        return {
            **self.to_api(),
            "phoneId": self.phone_id,
            "idempotencyKey": self.idempotency_key,
        }

    def event(self) -> MessageEvent:
        """The ``message.sent`` / ``message.failed`` event, fields as the docs show them."""
        common: dict[str, Any] = {
            "message_id": self.id,
            "from_": self.sender,
            "to": self.to,
            "status": self.status,
            "environment": self.environment,
        }
        if self.status == "failed":
            data = MessageEventData(
                **common,
                failed_at=self.failed_at,
                error_code=self.error_code,
                error_message=self.error_message,
            )
        else:
            data = MessageEventData(**common, sent_at=self.sent_at)
        return MessageEvent(event=f"message.{self.status}", timestamp=utcnow(), data=data)


@dataclass(slots=True)
class WebhookEndpoint:
    """A configured webhook destination."""

    id: str
    url: str
    secret: str = field(repr=False)
    events: frozenset[str]

    def to_admin(self) -> dict[str, Any]:
        """The admin view; the secret stays out."""
        return {"id": self.id, "url": self.url, "events": sorted(self.events)}


@dataclass(slots=True)
class DeliveryAttempt:
    """One attempt to deliver one webhook event to one endpoint."""

    delivery_id: str
    endpoint_id: str
    url: str
    event: str
    attempt: int
    scheduled_at: datetime
    attempted_at: datetime
    offset_seconds: float
    signature: str
    duration_ms: float
    status_code: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """True when the endpoint answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_admin(self) -> dict[str, Any]:
        """The admin view of the attempt."""
        return {
            "deliveryId": self.delivery_id,
            "endpointId": self.endpoint_id,
            "url": self.url,
            "event": self.event,
            "attempt": self.attempt,
            "scheduledAt": iso(self.scheduled_at),
            "attemptedAt": iso(self.attempted_at),
            "offsetSeconds": round(self.offset_seconds, 4),
            "statusCode": self.status_code,
            "error": self.error,
            "succeeded": self.succeeded,
            "signature": self.signature,
            "durationMs": round(self.duration_ms, 2),
        }


USAGE_PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
_LONGEST_PERIOD = max(USAGE_PERIODS.values()).total_seconds()


class RequestStats:
    """Counts of ``/v1`` requests: by endpoint and status, and per second for usage."""

    def __init__(self) -> None:
        self.by_endpoint: Counter[tuple[str, int]] = Counter()
        # (unix second, total, successful) for requests made with a valid key.
        self._seconds: deque[list[int]] = deque()

    def record(self, endpoint: str, status: int, authenticated: bool) -> None:
        """Count one answered request."""
        self.by_endpoint[endpoint, status] += 1
        if not authenticated:
            return
        second = int(time.time())
        if not self._seconds or self._seconds[-1][0] != second:
            self._seconds.append([second, 0, 0])
            while second - self._seconds[0][0] > _LONGEST_PERIOD:
                self._seconds.popleft()
        bucket = self._seconds[-1]
        bucket[1] += 1
        if status < 400:
            bucket[2] += 1

    def usage_since(self, start: datetime) -> RequestCounts:
        """Authenticated requests from ``start`` to now."""
        first = int(start.timestamp())
        total = successful = 0
        for second, count, ok in reversed(self._seconds):
            if second < first:
                break
            total += count
            successful += ok
        return RequestCounts(total=total, successful=successful, failed=total - successful)

    def to_admin(self) -> dict[str, Any]:
        """Totals by status and by endpoint."""
        by_status: Counter[int] = Counter()
        by_endpoint: dict[str, dict[str, int]] = {}
        for (endpoint, status), count in sorted(self.by_endpoint.items()):
            by_status[status] += count
            by_endpoint.setdefault(endpoint, {})[str(status)] = count
        return {
            "total": sum(by_status.values()),
            "byStatus": {str(status): count for status, count in sorted(by_status.items())},
            "byEndpoint": by_endpoint,
        }


class SandboxState:
    """Everything the sandbox holds. Mutated only from the server's event loop."""

    def __init__(self, account: AccountRecord, settings: Settings) -> None:
        self.reset(account, settings)

    def reset(self, account: AccountRecord, settings: Settings) -> None:
        """Forget everything: an empty store for ``account``."""
        self.account = account
        self.settings = settings
        self.keys: dict[str, ApiKeyRecord] = {}
        self.phones: dict[str, PhoneRecord] = {}
        self.messages: dict[str, MessageRecord] = {}
        self.idempotency: dict[str, str] = {}
        self.webhooks: dict[str, WebhookEndpoint] = {}
        self.deliveries: list[DeliveryAttempt] = []
        self.requests = RequestStats()

    def add_key(self, key: ApiKeyRecord) -> ApiKeyRecord:
        """Store an API key."""
        self.keys[key.key] = key
        return key

    def key_by_id(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this ID (not the secret), if any."""
        return next((k for k in self.keys.values() if k.id == key_id), None)

    def add_phone(self, phone: PhoneRecord) -> PhoneRecord:
        """Store a phone."""
        self.phones[phone.id] = phone
        return phone

    def find_phone(self, ref: str) -> PhoneRecord | None:
        """A phone by internal ID or E.164 number."""
        phone = self.phones.get(ref)
        if phone is None and ref.startswith("+"):
            phone = next((p for p in self.phones.values() if p.phone_number == ref), None)
        return phone

    def add_message(self, message: MessageRecord) -> MessageRecord:
        """Store a message (and its idempotency key, scoped to the account)."""
        self.messages[message.id] = message
        if message.idempotency_key is not None:
            self.idempotency[message.idempotency_key] = message.id
        return message

    def message_for_idempotency_key(self, key: str) -> MessageRecord | None:
        """The message an earlier send with this idempotency key created, if any."""
        message_id = self.idempotency.get(key)
        return None if message_id is None else self.messages.get(message_id)

    def messages_newest_first(
        self, environment: str, status: str | None, phone_id: str | None
    ) -> list[MessageRecord]:
        """Messages matching the filters, by ``createdAt`` descending (then newest stored)."""
        found = [
            m
            for m in reversed(self.messages.values())
            if m.environment == environment
            and (status is None or m.status == status)
            and (phone_id is None or m.phone_id == phone_id)
        ]
        # Stable sort: equal timestamps keep the newest-stored-first order.
        found.sort(key=lambda m: m.created_at, reverse=True)
        return found

    def account_to_api(self) -> dict[str, Any]:
        """``GET /v1/account``'s data."""
        return Account(
            account_id=self.account.id,
            name=self.account.name,
            email=self.account.email,
            subscription_status=self.account.subscription_status,
            stats=AccountStats(
                api_keys=len(self.keys),
                phone_numbers=len(self.phones),
                messages=len(self.messages),
            ),
        ).to_api()

    def message_counts(self, environment: str, start: datetime) -> MessageCounts:
        """Messages of an environment created since ``start``, by status."""
        by_status = Counter(
            m.status
            for m in self.messages.values()
            if m.environment == environment and m.created_at >= start
        )
        return MessageCounts(
            total=sum(by_status.values()),
            pending=by_status["pending"],
            sent=by_status["sent"],
            failed=by_status["failed"],
        )
