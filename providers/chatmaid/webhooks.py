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

import contextlib
import hashlib
import hmac
import json
import re
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

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


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
    """Parse a webhook body (already verified) into its typed event model.

    An event whose ``data`` does not fit its type's model (a shape this version does
    not know) parses as a generic ``WebhookEvent``: nothing verified is dropped.
    """
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidWebhookPayloadError(f"webhook body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidWebhookPayloadError("webhook body must be a JSON object")
    event_type = payload.get("event")
    model = WEBHOOK_EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    event: WebhookEvent | None = None
    if model is not None:
        with contextlib.suppress(ValidationError):
            event = model.model_validate(payload)
    if event is None:
        try:
            event = WebhookEvent.model_validate(payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise InvalidWebhookPayloadError(
                f"webhook body is not a valid event: {problems}"
            ) from None
    event._raw_body = body
    event._payload = payload
    return event


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    if not header or not header.strip():
        raise MissingSignatureError(f"the {SIGNATURE_HEADER} header is missing")
    if not header.isascii():
        raise MalformedSignatureError(f"{SIGNATURE_HEADER} must be ASCII")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise MalformedSignatureError(
                f"{SIGNATURE_HEADER} part {_shown(part.strip())} is not name=value"
            )
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            if not _HEX_SIGNATURE.fullmatch(value):
                raise MalformedSignatureError(
                    f"{SIGNATURE_HEADER} v1={_shown(value)} is not a 64-digit hex HMAC-SHA256"
                )
            signatures.append(value)
    if len(timestamps) != 1 or not signatures:
        raise MalformedSignatureError(
            f"{SIGNATURE_HEADER} must carry one t=<unix seconds> and at least one v1=<hex>"
        )
    if not _UNIX_SECONDS.fullmatch(timestamps[0]):
        raise MalformedSignatureError(
            f"{SIGNATURE_HEADER} t={_shown(timestamps[0])} is not unix time in seconds"
        )
    return int(timestamps[0]), signatures


def _shown(text: str) -> str:
    """A header fragment as an error may quote it: short, whatever it holds."""
    return repr(text if len(text) <= 40 else text[:40] + "…")
