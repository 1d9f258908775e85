"""Webhook deliveries as the sandbox records them: one record a delivery, all its attempts.

A delivery is one event for one endpoint; it is attempted, then retried on the
documented schedule until an attempt gets a 2xx or the attempts run out. "Deliver
again" (``POST /_sandbox/deliveries/{id}/redeliver``) makes a new delivery of the same
body, linked to the first by ``redelivery_of``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .wire import iso

#: ``dropped``: its endpoint was removed before it succeeded or ran out of attempts.
DeliveryState = Literal["queued", "retrying", "succeeded", "failed", "dropped"]
#: How much of a receiver's answer is kept, in characters.
RESPONSE_BODY_LIMIT = 2000


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
    response_body: str | None = None

    @property
    def succeeded(self) -> bool:
        """True when the endpoint answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_admin(self) -> dict[str, Any]:
        """The admin view of the attempt; ``answeredAt`` is null when nothing answered."""
        answered = None
        if self.status_code is not None:
            answered = self.attempted_at + timedelta(milliseconds=self.duration_ms)
        return {
            "deliveryId": self.delivery_id,
            "endpointId": self.endpoint_id,
            "url": self.url,
            "event": self.event,
            "attempt": self.attempt,
            "scheduledAt": iso(self.scheduled_at),
            "attemptedAt": iso(self.attempted_at),
            "answeredAt": iso(answered),
            "offsetSeconds": round(self.offset_seconds, 4),
            "statusCode": self.status_code,
            "error": self.error,
            "succeeded": self.succeeded,
            "signature": self.signature,
            "durationMs": round(self.duration_ms, 2),
            "responseBody": self.response_body,
        }


@dataclass(slots=True)
class DeliveryRecord:
    """One event for one endpoint: the body sent, every attempt, and where it stands.

    ``subject`` is the message, inbound message or phone the event is about.
    """

    id: str
    endpoint_id: str
    url: str
    event: str
    subject: str | None
    body: str
    queued_at: datetime
    redelivery_of: str | None = None
    state: DeliveryState = "queued"
    next_attempt_at: datetime | None = None
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    def add(self, attempt: DeliveryAttempt, next_attempt_at: datetime | None) -> None:
        """Record an attempt; ``next_attempt_at`` is when a failed one is retried, if it is."""
        self.attempts.append(attempt)
        self.next_attempt_at = next_attempt_at
        if attempt.succeeded:
            self.state = "succeeded"
        else:
            self.state = "failed" if next_attempt_at is None else "retrying"

    def to_admin(self) -> dict[str, Any]:
        """The admin view: the delivery with its body and attempts, oldest first."""
        return {
            "deliveryId": self.id,
            "endpointId": self.endpoint_id,
            "url": self.url,
            "event": self.event,
            "subject": self.subject,
            "body": self.body,
            "queuedAt": iso(self.queued_at),
            "state": self.state,
            "nextAttemptAt": iso(self.next_attempt_at),
            "redeliveryOf": self.redelivery_of,
            "attempts": [attempt.to_admin() for attempt in self.attempts],
        }


def subject_of(payload: dict[str, Any]) -> str | None:
    """The ID an event is about: ``messageId`` (message events) or the phone's ID."""
    data = payload.get("data")
    if not isinstance(data, dict):
        return None
    subject = data.get("messageId") or data.get("id") or data.get("phoneId")
    return subject if isinstance(subject, str) else None
