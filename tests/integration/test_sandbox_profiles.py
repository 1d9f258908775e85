"""Issue 12's contract, in both profiles: the docs' exact words, no undocumented extras
unless asked, the live API's known extras in the ``live`` profile only, and retries that
keep their signature on demand.

Expected values are the docs' literal strings and the JS SDK's shapes (``src/types.ts``),
written out here, never computed by the sandbox's or the client's code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from chatmaid import ChatmaidClient, webhooks
from chatmaid.sandbox import SEED
from chatmaid.sandbox.admin_client import SandboxAdminError
from chatmaid.sandbox.pytest_plugin import SANDBOX_PROFILES
from chatmaid.sandbox.server import SandboxHandle

from .test_sandbox_webhooks import SECRET, Receiver, receiver, verify_signature

__all__ = ["receiver"]  # the fixture, imported for these tests

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES),
]

E164_MESSAGE = "Phone number must be in E.164 format (e.g., +1987654321)"
TO = "+15557654321"
DOCS_MESSAGE_KEYS = {
    "id", "from", "to", "content", "mediaUrls", "environment", "status",
    "createdAt", "sentAt", "failedAt", "errorCode", "errorMessage",
}  # fmt: skip
LIVE_MESSAGE_KEYS = DOCS_MESSAGE_KEYS | {"isGroup", "groupId", "deliveredAt", "readAt"}
#: The SDK's ``MessageErrorCode`` values.
SDK_ERROR_CODES = {
    "NOT_CONNECTED", "INVALID_RECIPIENT", "RECIPIENT_NOT_REACHABLE", "NOT_GROUP_MEMBER",
    "RATE_LIMITED", "NOT_AUTHORIZED", "MEDIA_ERROR", "TIMEOUT", "SERVICE_UNAVAILABLE",
    "INTERNAL_ERROR",
}  # fmt: skip
#: Headers any HTTP client adds; beyond these a webhook carries only the documented three.
TRANSPORT_HEADERS = {"host", "accept", "accept-encoding", "connection", "user-agent"}


def call(sandbox: SandboxHandle, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
    """One plain HTTP request with the test key (no client logic in the way)."""
    headers = {"Authorization": f"Bearer {key or SEED.test_key}"}
    return httpx.request(method, sandbox.url + path, headers=headers, timeout=10, **kw)


def send_body(**fields: Any) -> dict[str, Any]:
    return {"fromPhoneId": SEED.phone_id, "to": TO, "content": "hi", **fields}


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- 1. the docs' exact words -------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "messages"),
    [
        (123, [E164_MESSAGE, "to must be a string"]),  # the Errors page's example, verbatim
        ("+1", [E164_MESSAGE]),
        ("15557654321", [E164_MESSAGE]),
        ("+0123456789", [E164_MESSAGE]),
        ("+1234567890123456", [E164_MESSAGE]),  # 16 digits
    ],
)
def test_bad_numbers_get_the_docs_messages_exactly(
    chatmaid_sandbox: SandboxHandle, to: object, messages: list[str]
) -> None:
    response = call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body(to=to))
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == messages
    assert (body["error"], body["statusCode"], body["path"]) == (
        "Bad Request",
        400,
        "/v1/messages/send",
    )


@pytest.mark.parametrize("to", ["+1987654321", "+15551234567", "+12"])
def test_the_docs_example_numbers_are_accepted(chatmaid_sandbox: SandboxHandle, to: str) -> None:
    response = call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body(to=to))
    assert response.status_code == 201
    assert response.json()["data"]["to"] == to


def test_the_client_sends_the_docs_example_number(chatmaid_sandbox: SandboxHandle) -> None:
    with ChatmaidClient(
        SEED.test_key, base_url=chatmaid_sandbox.url, requests_per_minute=None
    ) as client:
        message = client.send_message(from_phone=SEED.phone_id, to="+1987654321", content="hi")
    assert (message.to, message.status) == ("+1987654321", "sent")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/v1/account"),
        ("DELETE", "/v1/messages/send"),
        ("GET", "/v1/nothing?x=%20y"),
        ("PATCH", "/v1/phone-numbers/%2B15551234567?a=1&b=%2B"),
    ],
)
def test_wrong_methods_and_routes_are_nestjs_404s(
    chatmaid_sandbox: SandboxHandle, method: str, url: str
) -> None:
    response = call(chatmaid_sandbox, method, url)
    assert response.status_code == 404
    body = response.json()
    assert body["message"] == [f"Cannot {method} {url}"]
    assert (body["error"], body["statusCode"], body["path"]) == ("Not Found", 404, url)
    assert "allow" not in response.headers


def test_the_envelope_path_is_the_url_as_requested(chatmaid_sandbox: SandboxHandle) -> None:
    url = "/v1/phone-numbers/%2B15550009999/status?verbose=%2B1"
    response = call(chatmaid_sandbox, "GET", url)
    assert response.status_code == 404
    assert response.json()["path"] == url  # not decoded, query string kept
    listed = call(chatmaid_sandbox, "GET", "/v1/messages?limit=0")
    assert (listed.status_code, listed.json()["path"]) == (400, "/v1/messages?limit=0")


# -- 2. nothing undocumented unless asked ---------------------------------------------------


def test_429_has_no_retry_after_header_unless_asked(chatmaid_sandbox: SandboxHandle) -> None:
    limited = chatmaid_sandbox.admin.create_api_key(rate_limit=1)["key"]
    assert call(chatmaid_sandbox, "GET", "/v1/account", limited).status_code == 200
    refused = call(chatmaid_sandbox, "GET", "/v1/account", limited)
    assert refused.status_code == 429
    assert refused.json() == {"success": False, "error": "Rate limit exceeded", "retryAfter": 60}
    assert "retry-after" not in refused.headers
    chatmaid_sandbox.admin.update_settings(retry_after_header=True)
    again = call(chatmaid_sandbox, "GET", "/v1/account", limited)
    assert again.status_code == 429
    assert again.headers["retry-after"] == str(again.json()["retryAfter"])


def test_webhooks_carry_only_the_documented_headers_unless_asked(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body())
    [plain] = receiver.wait_for(1)
    extra = set(plain.headers) - TRANSPORT_HEADERS - {"content-length"}
    assert extra == {"content-type", "x-chatmaid-event", "x-chatmaid-signature"}
    chatmaid_sandbox.admin.update_settings(delivery_id_header=True)
    call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body())
    tagged = receiver.wait_for(2)[1]
    assert tagged.headers["x-chatmaid-delivery"].startswith("dlv_")


# -- 3. the live API's known extras, in the live profile only -------------------------------


def test_message_fields_follow_the_profile(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    data = call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body()).json()["data"]
    if chatmaid_sandbox_profile == "docs":
        assert set(data) == DOCS_MESSAGE_KEYS
    else:
        assert set(data) == LIVE_MESSAGE_KEYS
        assert (data["isGroup"], data["groupId"], data["deliveredAt"], data["readAt"]) == (
            False,
            None,
            None,
            None,
        )


def test_live_messages_progress_to_delivered_and_read(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=0.1)
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    sent = call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body()).json()["data"]
    path = f"/v1/messages/{sent['id']}"
    if chatmaid_sandbox_profile == "docs":
        [delivery] = receiver.wait_for(1)
        time.sleep(0.5)  # five live_delays: a live profile would have moved on by now
        assert [r.event for r in receiver.received] == ["message.sent"]
        assert call(chatmaid_sandbox, "GET", path).json()["data"]["status"] == "sent"
        return
    deliveries = receiver.wait_for(3)
    assert [d.event for d in deliveries] == ["message.sent", "message.delivered", "message.read"]
    final = call(chatmaid_sandbox, "GET", path).json()["data"]
    assert final["status"] == "read"
    assert final["sentAt"] <= final["deliveredAt"] <= final["readAt"]
    for delivery in deliveries:
        payload = json.loads(delivery.body)
        assert payload["event"] == delivery.event
        assert set(payload["data"]) == {
            "messageId", "from", "to", "isGroup", "groupId", "status", "source", "sentAt",
            "deliveredAt", "readAt", "failedAt", "environment",
        }  # fmt: skip
        assert (payload["data"]["status"], payload["data"]["source"]) == (
            delivery.event.removeprefix("message."),
            "api",
        )
    only_read = call(chatmaid_sandbox, "GET", "/v1/messages", params={"status": "read"})
    assert [m["id"] for m in only_read.json()["data"]["data"]] == [sent["id"]]
    usage = call(chatmaid_sandbox, "GET", "/v1/account/usage").json()["data"]["messages"]
    assert set(usage) == {"total", "pending", "sent", "delivered", "read", "failed"}
    assert usage["read"] == 1


def test_admin_advances_a_live_message_one_step_at_a_time(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=3600)
    live = SEED.live_key
    sent = call(chatmaid_sandbox, "POST", "/v1/messages/send", live, json=send_body()).json()
    sent = sent["data"]
    path = f"/v1/messages/{sent['id']}"
    steps = ["sent", "delivered", "read"] if chatmaid_sandbox_profile == "live" else ["sent"]
    for step in steps:
        assert call(chatmaid_sandbox, "GET", path, live).json()["data"]["status"] != step
        assert chatmaid_sandbox.admin.advance_message(sent["id"])["status"] == step
        assert call(chatmaid_sandbox, "GET", path, live).json()["data"]["status"] == step
    done = f"Message {sent['id']} is {steps[-1]}: no step is due"
    with pytest.raises(SandboxAdminError, match=done):
        chatmaid_sandbox.admin.advance_message(sent["id"])
    with pytest.raises(SandboxAdminError, match="Message msg_nope not found"):
        chatmaid_sandbox.admin.advance_message("msg_nope")


def test_list_status_filter_follows_the_profile(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    response = call(chatmaid_sandbox, "GET", "/v1/messages", params={"status": "delivered"})
    if chatmaid_sandbox_profile == "live":
        assert response.status_code == 200
    else:
        assert response.json()["message"] == [
            "status must be one of pending, sent, failed (got 'delivered')"
        ]


def test_the_core_waits_and_keeps_unknown_values_in_both_profiles(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=0.1)
    with ChatmaidClient(
        SEED.live_key, base_url=chatmaid_sandbox.url, requests_per_minute=None
    ) as client:
        message = client.send_message(from_phone=SEED.phone_id, to=TO, content="live")
        settled = client.wait_for_terminal(message.id, poll_interval=0.05, timeout=30)
        assert settled.status in ({"sent"} if chatmaid_sandbox_profile == "docs" else
                                  {"sent", "delivered", "read"})  # fmt: skip
        if chatmaid_sandbox_profile == "live":
            wait_until(lambda: client.get_message(message.id).status == "read", "read")
            read = client.get_message(message.id)
            assert read.is_terminal
            extra = read.model_extra or {}
            assert extra["deliveredAt"] is not None
            assert extra["readAt"] is not None
            assert extra["isGroup"] is False


def test_inbound_replies(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    stored = chatmaid_sandbox.admin.simulate_inbound(sender=TO, content="yes please")
    assert set(stored) == {
        "id", "from", "to", "content", "type", "isGroup", "groupId", "receivedAt", "createdAt",
    }  # fmt: skip
    assert (stored["from"], stored["to"], stored["type"]) == (TO, SEED.phone_number, "text")
    assert chatmaid_sandbox.admin.inbound_messages() == [stored]
    if chatmaid_sandbox_profile == "docs":
        time.sleep(0.3)
        assert receiver.received == []  # not a documented event
        return
    [delivery] = receiver.wait_for(1)
    assert delivery.event == "message.received"
    assert verify_signature(delivery.body.decode(), delivery.signature, SECRET)
    data = json.loads(delivery.body)["data"]
    assert data == {
        "messageId": stored["id"],
        "from": TO,
        "to": SEED.phone_number,
        "content": "yes please",
        "type": "text",
        "isGroup": False,
        "groupId": None,
        "receivedAt": stored["receivedAt"],
    }
    event = webhooks.verify(delivery.body, delivery.signature, SECRET)
    assert event.event == "message.received"


def test_manual_outgoing_messages(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    if chatmaid_sandbox_profile == "docs":
        response = httpx.post(f"{chatmaid_sandbox.url}/_sandbox/outgoing", json={"to": TO})
        assert response.status_code == 400
        assert "only in the live profile" in response.json()["message"][0]
        return
    chatmaid_sandbox.admin.simulate_outgoing(to=TO, content="typed by hand")
    [delivery] = receiver.wait_for(1)
    assert delivery.event == "message.outgoing"
    data = json.loads(delivery.body)["data"]
    assert set(data) == {
        "from", "to", "content", "type", "isGroup", "groupId", "source", "sentAt",
    }  # fmt: skip
    assert (data["from"], data["to"], data["source"]) == (SEED.phone_number, TO, "manual")


def test_phone_events_follow_the_profile(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["phone.connected"])
    chatmaid_sandbox.admin.set_phone_connected(SEED.disconnected_phone_id, True)
    [delivery] = receiver.wait_for(1)
    data = json.loads(delivery.body)["data"]
    if chatmaid_sandbox_profile == "docs":
        assert set(data) == {
            "id", "phoneNumber", "connectionStatus", "lastConnectedAt", "lastDisconnectedAt",
        }  # fmt: skip
    else:  # the SDK's PhoneEventData
        assert set(data) == {
            "phoneId", "phoneNumber", "displayName", "status", "lastConnectedAt",
            "lastDisconnectedAt",
        }  # fmt: skip
        assert (data["phoneId"], data["status"]) == (SEED.disconnected_phone_id, "connected")


def test_account_fields_follow_the_profile(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str
) -> None:
    data = call(chatmaid_sandbox, "GET", "/v1/account", SEED.live_key).json()["data"]
    docs_keys = {"accountId", "name", "email", "subscriptionStatus", "stats"}
    if chatmaid_sandbox_profile == "docs":
        assert set(data) == docs_keys
    else:
        assert set(data) == docs_keys | {
            "environment", "phoneNumbersCount", "messagesCount", "createdAt",
        }  # fmt: skip
        assert data["environment"] == "live"
        assert data["phoneNumbersCount"] == data["stats"]["phoneNumbers"]


@pytest.mark.parametrize("to", ["+15550000000", "+15550000001"])
def test_failures_use_the_sdks_stable_codes(chatmaid_sandbox: SandboxHandle, to: str) -> None:
    data = call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body(to=to)).json()
    assert data["data"]["status"] == "failed"
    assert data["data"]["errorCode"] in SDK_ERROR_CODES
    expected = {"+15550000000": "INVALID_RECIPIENT", "+15550000001": "RECIPIENT_NOT_REACHABLE"}
    assert data["data"]["errorCode"] == expected[to]


# -- 4. webhook retries and their signature ------------------------------------------------


@pytest.mark.parametrize("keep", [False, True])
def test_retries_are_signed_afresh_or_keep_the_first_signature(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver, keep: bool
) -> None:
    # One "minute" = 1.5 s: the retry comes at least a second after the first attempt.
    chatmaid_sandbox.admin.update_settings(time_scale=0.025, keep_signature_on_retry=keep)
    receiver.answers = [500]
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    call(chatmaid_sandbox, "POST", "/v1/messages/send", json=send_body())
    first, retry = receiver.wait_for(2, timeout=20)
    assert first.body == retry.body
    assert verify_signature(retry.body.decode(), retry.signature, SECRET)
    if keep:
        assert retry.signature == first.signature
    else:
        assert retry.t > first.t
