"""Signing and verifying Chatmaid webhooks, and parsing them into typed events.

The header is ``X-Chatmaid-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256 of ``"<t>.<raw body>"`` under the endpoint's secret. Several ``v1`` values
may appear (a secret being rotated); any match is enough.

>>> header = sign(b'{"event":"message.sent","timestamp":"2026-02-06T14:20:00.000Z",'
...               b'"data":{"messageId":"msg_1","status":"sent"}}', "whsec_x", timestamp=1)
>>> header.startswith("t=1,v1=")
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable

from pydantic import ValidationError

from ._errors import (
    InvalidWebhookPayloadError,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    TimestampOutsideToleranceError,
)
from ._models import WEBHOOK_EVENT_TYPES, WebhookEvent

SIGNATURE_HEADER = "X-Chatmaid-Signature"
EVENT_HEADER = "X-Chatmaid-Event"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(raw_body: bytes | str, secret: str, timestamp: int) -> str:
    """The hex ``v1`` signature of a body at a timestamp."""
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(raw_body: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``X-Chatmaid-Signature`` header value for a body, signed now unless told."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={compute_signature(raw_body, secret, at)}"


def verify(
    raw_body: bytes | str,
    signature_header: str | None,
    secret: str | Iterable[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookEvent:
    """Check a delivery's signature and freshness, then parse its body.

    ``secret`` may be several secrets while one is being rotated. Raises a subclass of
    ``WebhookVerificationError`` naming the check that failed; returns a typed event
    (``MessageEvent``, ``PhoneEvent``, or a generic ``WebhookEvent`` for other types).
    """
    timestamp, candidates = _parse_header(signature_header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise TimestampOutsideToleranceError(
            f"signature timestamp {timestamp} is {current - timestamp:+.0f}s from now, "
            f"outside the {tolerance:g}s tolerance: a replayed delivery or a skewed clock"
        )
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [compute_signature(raw_body, s, timestamp) for s in secrets]
    if not any(hmac.compare_digest(c, e) for c in candidates for e in expected):
        raise SignatureMismatchError(
            "no v1 signature matches the body under the configured webhook secret"
        )
    return parse_event(raw_body)


def parse_event(raw_body: bytes | str) -> WebhookEvent:
    """Parse a webhook body (already verified) into its typed event model."""
    try:
        payload = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidWebhookPayloadError(f"webhook body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidWebhookPayloadError("webhook body must be a JSON object")
    event_type = payload.get("event")
    model = (
        WEBHOOK_EVENT_TYPES.get(event_type, WebhookEvent)
        if isinstance(event_type, str)
        else WebhookEvent
    )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidWebhookPayloadError(f"webhook body is not a valid event: {problems}") from None


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    if not header or not header.strip():
        raise MissingSignatureError(f"the {SIGNATURE_HEADER} header is missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise MalformedSignatureError(
                f"{SIGNATURE_HEADER} part {part.strip()!r} is not name=value"
            )
        if name == "t":
            if not value.isdigit():
                raise MalformedSignatureError(f"{SIGNATURE_HEADER} t={value!r} is not unix time")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise MalformedSignatureError(
            f"{SIGNATURE_HEADER} must carry t=<unix seconds> and at least one v1=<hex>"
        )
    return timestamp, signatures
