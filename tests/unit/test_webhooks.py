"""Webhook signing and verification, checked against the docs' own verifier."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from chatmaid import (
    InboundMessageEvent,
    InvalidWebhookPayloadError,
    MalformedSignatureError,
    MessageEvent,
    MissingSignatureError,
    PhoneEvent,
    SignatureMismatchError,
    TimestampOutsideToleranceError,
    WebhookEvent,
)
from chatmaid.webhooks import sign, verify

SECRET = "whsec_unit_secret"
NOW = 1_770_000_000
BODY = json.dumps(
    {
        "event": "message.sent",
        "timestamp": "2026-02-06T14:20:00.000Z",
        "data": {
            "messageId": "msg_abc123def456",
            "from": "+15551234567",
            "to": "+15557654321",
            "status": "sent",
            "environment": "live",
            "sentAt": "2026-02-06T14:19:12.000Z",
        },
    }
)


def docs_verify_signature(raw_body: str, signature_header: str, secret: str) -> bool:
    """Copied verbatim from the Webhooks page of the API docs."""
    # signature format: t=1700000000,v1=
    parts = dict(part.split("=", 1) for part in signature_header.split(","))
    payload = (parts["t"] + "." + raw_body).encode("utf-8")
    expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts.get("v1", ""), expected)


def test_our_signature_passes_the_docs_verifier() -> None:
    assert docs_verify_signature(BODY, sign(BODY, SECRET, timestamp=NOW), SECRET)


def test_we_accept_what_the_docs_verifier_accepts() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.{BODY}".encode(), hashlib.sha256).hexdigest()
    header = f"t={NOW},v1={expected}"
    assert docs_verify_signature(BODY, header, SECRET)
    event = verify(BODY.encode(), header, SECRET, now=NOW)
    assert isinstance(event, MessageEvent)
    assert event.data.message_id == "msg_abc123def456"
    assert event.data.status == "sent"


def test_rotation_accepts_any_matching_v1_and_any_configured_secret() -> None:
    old = sign(BODY, "whsec_old", timestamp=NOW).split(",")[1]
    header = f"t={NOW},{old},v1={'0' * 64}"
    assert verify(BODY, header, ["whsec_new", "whsec_old"], now=NOW).event == "message.sent"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, MissingSignatureError),
        ("", MissingSignatureError),
        ("garbage", MalformedSignatureError),
        (f"t={NOW}", MalformedSignatureError),
        ("t=yesterday,v1=abc", MalformedSignatureError),
        (f"v1={'a' * 64}", MalformedSignatureError),
        (f"t={NOW},v1={'a' * 64}", SignatureMismatchError),
    ],
)
def test_bad_headers_are_named(header: str | None, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        verify(BODY, header, SECRET, now=NOW)


def test_a_signature_under_another_secret_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError):
        verify(BODY, sign(BODY, "whsec_forger", timestamp=NOW), SECRET, now=NOW)


def test_a_tampered_body_is_rejected() -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    with pytest.raises(SignatureMismatchError):
        verify(BODY.replace("sent", "failed"), header, SECRET, now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_old_or_future_timestamps_are_replays(skew: int) -> None:
    header = sign(BODY, SECRET, timestamp=NOW + skew)
    with pytest.raises(TimestampOutsideToleranceError, match="300s tolerance"):
        verify(BODY, header, SECRET, now=NOW)


def test_tolerance_is_configurable() -> None:
    header = sign(BODY, SECRET, timestamp=NOW - 3600)
    assert verify(BODY, header, SECRET, now=NOW, tolerance=7200).event == "message.sent"


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"event": "message.sent"}'])
def test_signed_but_invalid_bodies_are_named(body: str) -> None:
    with pytest.raises(InvalidWebhookPayloadError):
        verify(body, sign(body, SECRET, timestamp=NOW), SECRET, now=NOW)


def test_unknown_event_types_parse_as_a_generic_event() -> None:
    body = json.dumps(
        {
            "event": "message.read",
            "timestamp": "2026-02-06T14:20:00.000Z",
            "data": {"messageId": "m"},
        }
    )
    event = verify(body, sign(body, SECRET, timestamp=NOW), SECRET, now=NOW)
    assert type(event) is WebhookEvent
    assert event.data == {"messageId": "m"}


def test_phone_events_are_typed() -> None:
    body = json.dumps(
        {
            "event": "phone.disconnected",
            "timestamp": "2026-02-06T14:20:00.000Z",
            "data": {"id": "p1", "phoneNumber": "+15551234567", "connectionStatus": "disconnected"},
        }
    )
    event = verify(body, sign(body, SECRET, timestamp=NOW), SECRET, now=NOW)
    assert isinstance(event, PhoneEvent)
    assert event.data.connection_status == "disconnected"


def test_the_secret_never_appears_in_errors() -> None:
    with pytest.raises(SignatureMismatchError) as caught:
        verify(BODY, f"t={NOW},v1={'a' * 64}", SECRET, now=NOW)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "header",
    [
        "t=²,v1=" + "a" * 64,  # a superscript digit: str.isdigit() says yes
        "t=" + "9" * 400 + ",v1=" + "a" * 64,
        "t=" + "9" * 5000 + ",v1=" + "a" * 64,
        f"t={NOW},v1=" + "é" * 64,
        f"t={NOW},v1=" + "a" * 63,
        f"t={NOW},t={NOW},v1=" + "a" * 64,
        f"t={NOW},,v1=" + "a" * 64,
        "=,=",
        f"t={NOW},v1=",
        "t=-5,v1=" + "a" * 64,
    ],
)
def test_any_malformed_header_raises_only_a_named_verification_error(header: str) -> None:
    with pytest.raises(MalformedSignatureError):
        verify(BODY, header, SECRET, now=NOW)


def test_verified_events_keep_the_body_and_json_exactly_as_received() -> None:
    raw = b'{"event":"message.sent","timestamp":"2026-02-06T14:20:00Z","data":{"messageId":"m1","status":"sent","extra":{"a":[1,2.50]}}}'  # noqa: E501
    event = verify(raw, sign(raw, SECRET, timestamp=NOW), SECRET, now=NOW)
    assert isinstance(event, MessageEvent)
    assert event.raw_body == raw
    assert event.payload["data"] == {"messageId": "m1", "status": "sent", "extra": {"a": [1, 2.5]}}
    assert "sentAt" not in event.payload["data"]


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (
            {
                "event": "message.delivered",
                "timestamp": "2026-02-06T14:20:00.000Z",
                "data": {
                    "messageId": "m1",
                    "status": "delivered",
                    "deliveredAt": "2026-02-06T14:20:00.000Z",
                },
            },
            MessageEvent,
        ),
        (
            {
                "event": "message.received",
                "timestamp": "2026-02-06T14:20:00.000Z",
                "data": {
                    "messageId": "in_1",
                    "from": "+15557654321",
                    "to": "+15551234567",
                    "content": "yes",
                    "type": "text",
                },
            },
            InboundMessageEvent,
        ),
        (
            {
                "event": "phone.disconnected",
                "timestamp": "2026-02-06T14:20:00.000Z",
                "data": {
                    "phoneId": "p1",
                    "phoneNumber": "+15551234567",
                    "displayName": None,
                    "status": "disconnected",
                },
            },
            PhoneEvent,
        ),
        (
            {
                "event": "message.sent",
                "timestamp": "2026-02-06T14:20:00.000Z",
                "data": {"weird": True},
            },
            WebhookEvent,
        ),
    ],
)
def test_live_api_shapes_parse_and_unknown_shapes_are_kept(
    body: dict[str, object], model: type[WebhookEvent]
) -> None:
    raw = json.dumps(body)
    event = verify(raw, sign(raw, SECRET, timestamp=NOW), SECRET, now=NOW)
    assert type(event) is model
    assert event.payload == body


def test_sdk_shaped_phone_events_name_their_phone() -> None:
    raw = json.dumps(
        {
            "event": "phone.connected",
            "timestamp": "2026-02-06T14:20:00.000Z",
            "data": {"phoneId": "p9", "status": "connected"},
        }
    )
    event = verify(raw, sign(raw, SECRET, timestamp=NOW), SECRET, now=NOW)
    assert isinstance(event, PhoneEvent)
    assert event.data.phone == "p9"
    assert event.data.status == "connected"
