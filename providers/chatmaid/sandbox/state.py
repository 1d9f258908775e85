"""The in-memory store: one account, its keys, phones, messages, webhooks and counters.

Records are plain mutable dataclasses; they render themselves as the docs show them
(``to_api``), written here rather than by the client's models, so the sandbox stays an
independent reading of the docs. ``live=True`` adds the live API's known extras (the
JS SDK's ``src/types.ts``; ``docs/sandbox.md``, "Profiles").
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .changes import ChangeFeed
from .deliveries import DeliveryAttempt, DeliveryRecord
from .options import Settings
from .wire import iso


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def new_id(prefix: str = "", hex_chars: int = 24) -> str:
    """A random identifier: ``prefix`` and ``hex_chars`` hex digits."""
    return prefix + os.urandom(hex_chars // 2).hex()


@dataclass(slots=True)
class AccountRecord:
    """The sandbox's single account."""

    id: str
    name: str
    email: str
    subscription_status: str = "active"
    created_at: datetime = field(default_factory=lambda: utcnow())


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
        return {
            "id": self.id,
            "phoneNumber": self.phone_number,
            "displayName": self.display_name,
            "connectionStatus": self.connection_status,
            "lastConnectedAt": iso(self.last_connected_at),
            "lastDisconnectedAt": iso(self.last_disconnected_at),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }

    def status_to_api(self) -> dict[str, Any]:
        """The phone as ``GET /v1/phone-numbers/:id/status`` answers it."""
        return {
            "id": self.id,
            "phoneNumber": self.phone_number,
            "connectionStatus": self.connection_status,
            "lastConnectedAt": iso(self.last_connected_at),
            "lastDisconnectedAt": iso(self.last_disconnected_at),
            "updatedAt": iso(self.updated_at),
        }

    def event(self, *, live: bool) -> dict[str, Any]:
        """The ``phone.connected`` / ``phone.disconnected`` event for the current state.

        The docs show no phone payload; ``live`` uses the SDK's ``PhoneEventData``.
        """
        data: dict[str, Any]
        if live:
            data = {
                "phoneId": self.id,
                "phoneNumber": self.phone_number,
                "displayName": self.display_name,
                "status": self.connection_status,
            }
        else:
            data = {
                "id": self.id,
                "phoneNumber": self.phone_number,
                "connectionStatus": self.connection_status,
            }
        data["lastConnectedAt"] = iso(self.last_connected_at)
        data["lastDisconnectedAt"] = iso(self.last_disconnected_at)
        return webhook_event(f"phone.{self.connection_status}", data)


def webhook_event(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """The documented webhook body: ``{event, timestamp, data}``."""
    return {"event": event, "timestamp": iso(utcnow()), "data": data}


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
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    idempotency_key: str | None = None
    api_key_id: str | None = None
    request_body: str | None = None  # the send's body as received

    def mark_sent(self, now: datetime) -> None:
        """The message reached WhatsApp."""
        self.status, self.sent_at = "sent", now

    def mark_failed(self, now: datetime, code: str, reason: str) -> None:
        """Delivery failed for good."""
        self.status, self.failed_at = "failed", now
        self.error_code, self.error_message = code, reason

    def mark_delivered(self, now: datetime) -> None:
        """The recipient's phone received it (live profile only)."""
        self.status, self.delivered_at = "delivered", now

    def mark_read(self, now: datetime) -> None:
        """The recipient opened it (live profile only)."""
        self.status, self.read_at = "read", now

    def to_api(self, *, live: bool = False) -> dict[str, Any]:
        """The message as send, get and list answer it (API Reference example)."""
        data: dict[str, Any] = {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "content": self.content,
            "mediaUrls": list(self.media_urls),
            "environment": self.environment,
            "status": self.status,
            "createdAt": iso(self.created_at),
            "sentAt": iso(self.sent_at),
            "failedAt": iso(self.failed_at),
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
        }
        if live:
            data |= _LIVE_RECIPIENT
            data["deliveredAt"] = iso(self.delivered_at)
            data["readAt"] = iso(self.read_at)
        return data

    def to_admin(self) -> dict[str, Any]:
        """The raw view: the API fields plus the sender's phone ID, the idempotency key,
        the key that sent it and the send's body as received."""
        return {
            **self.to_api(live=True),
            "phoneId": self.phone_id,
            "idempotencyKey": self.idempotency_key,
            "apiKeyId": self.api_key_id,
            "requestBody": self.request_body,
        }

    def event(self, *, live: bool) -> dict[str, Any]:
        """The ``message.<status>`` event: the Webhooks page's fields, the SDK's if ``live``."""
        data: dict[str, Any] = {
            "messageId": self.id,
            "from": self.sender,
            "to": self.to,
            "status": self.status,
            "environment": self.environment,
        }
        if live:
            data |= _LIVE_RECIPIENT | {
                "source": "api",
                "sentAt": iso(self.sent_at),
                "deliveredAt": iso(self.delivered_at),
                "readAt": iso(self.read_at),
                "failedAt": iso(self.failed_at),
            }
        elif self.status == "failed":
            data["failedAt"] = iso(self.failed_at)
        else:
            data["sentAt"] = iso(self.sent_at)
        if self.status == "failed":
            data["errorCode"], data["errorMessage"] = self.error_code, self.error_message
        return webhook_event(f"message.{self.status}", data)


#: The SDK's group fields; the sandbox sends to phone numbers only.
_LIVE_RECIPIENT: dict[str, Any] = {"isGroup": False, "groupId": None}


@dataclass(slots=True)
class InboundRecord:
    """A message the account's phone received (``POST /_sandbox/inbound``)."""

    id: str
    sender: str
    to: str
    content: str | None
    type: str
    received_at: datetime

    def to_admin(self) -> dict[str, Any]:
        """The SDK's ``InboundMessage`` shape."""
        return {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "content": self.content,
            "type": self.type,
            **_LIVE_RECIPIENT,
            "receivedAt": iso(self.received_at),
            "createdAt": iso(self.received_at),
        }

    def event(self) -> dict[str, Any]:
        """The ``message.received`` event (SDK's ``InboundMessageEventData``)."""
        data = self.to_admin()
        data["messageId"] = data.pop("id")
        del data["createdAt"]
        return webhook_event("message.received", data)


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

    def usage_since(self, start: datetime) -> dict[str, int]:
        """Authenticated requests from ``start`` to now."""
        first = int(start.timestamp())
        total = successful = 0
        for second, count, ok in reversed(self._seconds):
            if second < first:
                break
            total += count
            successful += ok
        return {"total": total, "successful": successful, "failed": total - successful}

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
        self.delivery_records: dict[str, DeliveryRecord] = {}
        self.inbound: dict[str, InboundRecord] = {}
        self.requests = RequestStats()
        self.changes = ChangeFeed()

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
        self.changes.touch("message", message.id)
        return message

    def add_inbound(self, record: InboundRecord) -> InboundRecord:
        """Store a message one of the account's phones received."""
        self.inbound[record.id] = record
        self.changes.touch("inbound", record.id)
        return record

    def add_delivery(self, record: DeliveryRecord) -> DeliveryRecord:
        """Store a webhook delivery, queued and not yet attempted."""
        self.delivery_records[record.id] = record
        self.changes.touch("delivery", record.id)
        return record

    def add_attempt(
        self, record: DeliveryRecord, attempt: DeliveryAttempt, next_attempt_at: datetime | None
    ) -> None:
        """Record a delivery attempt (and when it is retried, if it is)."""
        self.deliveries.append(attempt)
        record.add(attempt, next_attempt_at)
        self.changes.touch("delivery", record.id)

    def drop_deliveries(self, endpoint_id: str) -> None:
        """Mark an endpoint's unfinished deliveries ``dropped`` (it was removed)."""
        for record in self.delivery_records.values():
            if record.endpoint_id == endpoint_id and record.state in ("queued", "retrying"):
                record.state, record.next_attempt_at = "dropped", None
                self.changes.touch("delivery", record.id)

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

    def account_to_api(self, *, environment: str, live: bool = False) -> dict[str, Any]:
        """``GET /v1/account``'s data; ``live`` adds the SDK's ``Account`` fields."""
        data: dict[str, Any] = {
            "accountId": self.account.id,
            "name": self.account.name,
            "email": self.account.email,
            "subscriptionStatus": self.account.subscription_status,
            "stats": {
                "apiKeys": len(self.keys),
                "phoneNumbers": len(self.phones),
                "messages": len(self.messages),
            },
        }
        if live:
            data["environment"] = environment
            data["phoneNumbersCount"] = len(self.phones)
            data["messagesCount"] = len(self.messages)
            data["createdAt"] = iso(self.account.created_at)
        return data

    def message_counts(
        self, environment: str, start: datetime, *, live: bool = False
    ) -> dict[str, int]:
        """Messages of an environment created since ``start``, by status."""
        by_status = Counter(
            m.status
            for m in self.messages.values()
            if m.environment == environment and m.created_at >= start
        )
        statuses = _LIVE_STATUSES if live else ("pending", "sent", "failed")
        counts = {"total": sum(by_status.values())}
        return counts | {status: by_status[status] for status in statuses}


_LIVE_STATUSES = ("pending", "sent", "delivered", "read", "failed")
