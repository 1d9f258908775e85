"""Webhooks from the sandbox to a real receiver on loopback.

Deliveries are signed (the docs' own ``verify_signature`` accepts them), carry the
documented payloads, are retried 1, 5 and 15 "minutes" after the first attempt (the
fixture runs with ``time_scale=0.001``: 60, 300 and 900 ms), and are signed afresh at
each attempt.

Every test that holds in either profile runs in both (ids ``[docs]`` and ``[live]``).
In the ``live`` profile a sent message goes on to ``message.delivered`` and
``message.read``, each a delivery of its own, so tests that count one message's
deliveries subscribe to ``message.sent`` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatmaid import MessageEvent, PhoneEvent, webhooks
from chatmaid.sandbox import SEED, Admin, SandboxAdminError
from chatmaid.sandbox.pytest_plugin import SANDBOX_PROFILES
from chatmaid.sandbox.server import SandboxHandle, ServerThread

pytestmark = pytest.mark.integration

#: For a test that holds in either profile.
both_profiles = pytest.mark.parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES)

SECRET = "whsec_sandbox_tests"
TO = "+15557654321"


# Copied verbatim from the Webhooks page of the API docs.
def verify_signature(raw_body: str, signature_header: str, secret: str) -> bool:
    # signature format: t=1700000000,v1=
    parts = dict(part.split("=", 1) for part in signature_header.split(","))
    payload = (parts["t"] + "." + raw_body).encode("utf-8")
    expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts.get("v1", ""), expected)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> str:
        return self.headers["x-chatmaid-event"]

    @property
    def signature(self) -> str:
        return self.headers["x-chatmaid-signature"]

    @property
    def t(self) -> int:
        return int(dict(p.split("=", 1) for p in self.signature.split(","))["t"])


class Receiver:
    """A webhook endpoint that records every delivery and answers as scripted."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []  # statuses for the next deliveries; then 200
        self.delays: list[float] = []  # seconds to stall before answering; then 0
        self.answered = 0
        app = Starlette(routes=[Route("/hooks", self._endpoint, methods=["POST"])])
        self._server = ServerThread(app)
        self.url = self._server.url + "/hooks"

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(Received(dict(request.headers), body, time.monotonic()))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        self.answered += 1
        return Response(status_code=self.answers.pop(0) if self.answers else 200)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} deliveries arrived")
            time.sleep(0.01)
        return list(self.received)

    def __enter__(self) -> Receiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def send(sandbox: SandboxHandle, to: str = TO, key: str | None = None) -> str:
    client = sandbox.client(key, requests_per_minute=None)
    with client:
        return client.send_message(from_phone=SEED.phone_id, to=to, content="hi").id


# Docs profile only: it asserts the Webhooks page's payload exactly. The live profile's
# payloads carry the SDK's extra fields (and the message goes on to message.delivered and
# message.read); test_sandbox_profiles.py asserts those.
@pytest.mark.parametrize("chatmaid_sandbox_profile", ["docs"])
def test_deliveries_are_signed_with_the_documented_payloads(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    sent_id = send(chatmaid_sandbox)
    failed_id = send(chatmaid_sandbox, to="+15550000001")
    deliveries = {d.event: d for d in receiver.wait_for(2)}
    assert set(deliveries) == {"message.sent", "message.failed"}
    for delivery in deliveries.values():
        assert verify_signature(delivery.body.decode(), delivery.signature, SECRET)
        assert not verify_signature(delivery.body.decode(), delivery.signature, "whsec_other")
        assert delivery.headers["content-type"] == "application/json"
        assert "x-chatmaid-delivery" not in delivery.headers  # undocumented: off by default
        event = webhooks.verify(delivery.body, delivery.signature, SECRET)
        assert isinstance(event, MessageEvent)
        assert event.event == delivery.event

    sent = json.loads(deliveries["message.sent"].body)
    assert set(sent) == {"event", "timestamp", "data"}
    assert sent["event"] == "message.sent"
    assert sent["data"] == {
        "messageId": sent_id,
        "from": SEED.phone_number,
        "to": TO,
        "status": "sent",
        "environment": "test",
        "sentAt": sent["data"]["sentAt"],
    }
    failed = json.loads(deliveries["message.failed"].body)["data"]
    assert set(failed) == {
        "messageId", "from", "to", "status", "environment", "failedAt", "errorCode", "errorMessage",
    }  # fmt: skip
    assert (failed["messageId"], failed["status"], failed["errorCode"]) == (
        failed_id,
        "failed",
        "RECIPIENT_NOT_REACHABLE",
    )


@both_profiles
def test_endpoints_get_only_their_events(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.failed"])
    send(chatmaid_sandbox)
    failed_id = send(chatmaid_sandbox, to="+15550000000")
    [delivery] = receiver.wait_for(1)
    time.sleep(0.2)
    assert len(receiver.received) == 1
    assert json.loads(delivery.body)["data"]["messageId"] == failed_id


@both_profiles
def test_live_messages_are_announced_when_they_settle(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    started = time.monotonic()
    message_id = send(chatmaid_sandbox, key=SEED.live_key)
    delivery = receiver.wait_for(1)[0]  # the live profile's delivered and read follow
    assert delivery.event == "message.sent"
    assert delivery.at - started >= 0.2  # the fixture's live_delay
    data = json.loads(delivery.body)["data"]
    assert (data["messageId"], data["status"], data["environment"]) == (message_id, "sent", "live")


@both_profiles
def test_failed_deliveries_follow_the_retry_schedule(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    # One "minute" = 120 ms: retries due 0.12, 0.6 and 1.8 s after the first attempt.
    chatmaid_sandbox.admin.update_settings(time_scale=0.002, delivery_id_header=True)
    receiver.answers = [500] * 10
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    send(chatmaid_sandbox)
    attempts = receiver.wait_for(4)
    time.sleep(0.3)
    assert len(receiver.received) == 4  # the first attempt and 3 retries, then no more
    gaps = [a.at - attempts[0].at for a in attempts[1:]]
    for gap, planned in zip(gaps, (0.12, 0.6, 1.8), strict=True):
        assert planned - 0.01 <= gap <= planned + 0.25
    assert len({a.headers["x-chatmaid-delivery"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    assert all(verify_signature(a.body.decode(), a.signature, SECRET) for a in attempts)

    records = chatmaid_sandbox.admin.wait_for_deliveries(4)
    assert [r["attempt"] for r in records] == [1, 2, 3, 4]
    assert {(r["statusCode"], r["error"], r["succeeded"]) for r in records} == {
        (500, "HTTP 500", False)
    }
    assert {r["deliveryId"] for r in records} == {attempts[0].headers["x-chatmaid-delivery"]}
    assert [r["signature"] for r in records] == [a.signature for a in attempts]
    offsets = [r["offsetSeconds"] for r in records]
    assert offsets[0] == 0
    assert offsets == sorted(offsets)
    assert [r["scheduledAt"] for r in records] == sorted(r["scheduledAt"] for r in records)


@both_profiles
def test_each_attempt_is_signed_afresh(chatmaid_sandbox: SandboxHandle, receiver: Receiver) -> None:
    # 1.1 s between the first attempt and the retry, so the signed second differs.
    chatmaid_sandbox.admin.update_settings(time_scale=1.1 / 60)
    receiver.answers = [503]
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    send(chatmaid_sandbox)
    first, second = receiver.wait_for(2, timeout=5)
    assert second.at - first.at >= 1.09
    assert second.t > first.t
    assert first.signature != second.signature
    assert first.body == second.body
    assert all(verify_signature(d.body.decode(), d.signature, SECRET) for d in (first, second))
    records = chatmaid_sandbox.admin.wait_for_deliveries(2)
    assert [(r["attempt"], r["succeeded"]) for r in records] == [(1, False), (2, True)]


@both_profiles
def test_timeouts_and_connection_errors_are_retried(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.update_settings(webhook_timeout=0.2)
    receiver.delays = [1.0]
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    with socket.create_server(("127.0.0.1", 0)) as closed:
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks"
    chatmaid_sandbox.admin.add_webhook(nobody, SECRET, events=["message.sent"])
    send(chatmaid_sandbox)
    records = chatmaid_sandbox.admin.wait_for_deliveries(6)
    slow = [r for r in records if r["url"] == receiver.url]
    assert [(r["attempt"], r["succeeded"]) for r in slow] == [(1, False), (2, True)]
    assert "Timeout" in slow[0]["error"]
    assert slow[0]["statusCode"] is None
    unreachable = [r for r in records if r["url"] == nobody]
    assert [r["attempt"] for r in unreachable] == [1, 2, 3, 4]
    assert all(r["error"].startswith("ConnectError") for r in unreachable)


@both_profiles
def test_slow_receivers_never_delay_the_api(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    receiver.delays = [3.0] * 10  # each delivery stalls; the sends must not wait for it
    chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET)
    sent = [send(chatmaid_sandbox) for _ in range(5)]
    assert len(set(sent)) == 5
    assert receiver.answered == 0  # every send returned before any receiver answered
    receiver.wait_for(1)


@both_profiles
def test_removed_endpoints_get_no_more_retries(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    receiver.answers = [500] * 10
    webhook = chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    send(chatmaid_sandbox)
    receiver.wait_for(1)
    chatmaid_sandbox.admin.remove_webhook(webhook["id"])
    time.sleep(0.4)
    assert len(receiver.received) <= 2  # the retry 60 ms later may have gone out already
    assert chatmaid_sandbox.admin.webhooks() == []


def in_state(admin: Admin, message_id: str, state: str) -> list[dict[str, Any]]:
    """The message's deliveries in ``state``, once there is one (or after 5 s, none)."""
    deadline = time.monotonic() + 5
    while True:
        found = [d for d in admin.message(message_id)["deliveries"] if d["state"] == state]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@both_profiles
def test_deliveries_are_kept_whole_and_can_be_delivered_again(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    admin = chatmaid_sandbox.admin
    receiver.answers = [500] * 4
    webhook = admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    message_id = send(chatmaid_sandbox)
    receiver.wait_for(4)
    [failed] = in_state(admin, message_id, "failed")
    assert (failed["event"], failed["subject"], failed["url"]) == (
        "message.sent",
        message_id,
        receiver.url,
    )
    assert failed["body"].encode() == receiver.received[0].body
    assert [a["statusCode"] for a in failed["attempts"]] == [500] * 4
    assert failed["nextAttemptAt"] is None
    assert admin.delivery(failed["deliveryId"]) == failed

    again = admin.redeliver(failed["deliveryId"])
    assert (again["redeliveryOf"], again["state"], again["body"]) == (
        failed["deliveryId"], "queued", failed["body"],
    )  # fmt: skip
    [fifth] = receiver.wait_for(5)[4:]
    assert fifth.body == receiver.received[0].body
    assert verify_signature(fifth.body.decode(), fifth.signature, SECRET)
    admin.remove_webhook(webhook["id"])
    with pytest.raises(SandboxAdminError) as gone:
        admin.redeliver(failed["deliveryId"])
    assert gone.value.status_code == 409


@both_profiles
def test_a_removed_endpoints_unfinished_deliveries_are_dropped(
    chatmaid_sandbox: SandboxHandle, receiver: Receiver
) -> None:
    chatmaid_sandbox.admin.update_settings(time_scale=1.0)  # the first retry is a minute away
    receiver.answers = [500]
    webhook = chatmaid_sandbox.admin.add_webhook(receiver.url, SECRET, events=["message.sent"])
    message_id = send(chatmaid_sandbox)
    [retrying] = in_state(chatmaid_sandbox.admin, message_id, "retrying")
    assert retrying["nextAttemptAt"] > retrying["attempts"][0]["attemptedAt"]
    chatmaid_sandbox.admin.remove_webhook(webhook["id"])
    [dropped] = chatmaid_sandbox.admin.message(message_id)["deliveries"]
    assert (dropped["state"], dropped["nextAttemptAt"]) == ("dropped", None)


@both_profiles
def test_phone_toggles_emit_phone_events(
    chatmaid_sandbox: SandboxHandle, chatmaid_sandbox_profile: str, receiver: Receiver
) -> None:
    # The docs show no phone payload: the docs profile sends the status endpoint's
    # fields, the live profile the SDK's PhoneEventData (test_sandbox_profiles.py).
    id_key, status_key = ("id", "connectionStatus")
    expected_keys = {
        "id",
        "phoneNumber",
        "connectionStatus",
        "lastConnectedAt",
        "lastDisconnectedAt",
    }
    if chatmaid_sandbox_profile == "live":
        id_key, status_key = ("phoneId", "status")
        expected_keys = {
            "phoneId", "phoneNumber", "displayName", "status", "lastConnectedAt",
            "lastDisconnectedAt",
        }  # fmt: skip
    admin = chatmaid_sandbox.admin
    admin.add_webhook(receiver.url, SECRET, events=["phone.connected", "phone.disconnected"])
    admin.set_phone_connected(SEED.disconnected_phone_id, True)
    admin.set_phone_connected(SEED.disconnected_phone_number, True)  # no change, no event
    admin.set_phone_connected(SEED.disconnected_phone_id, False)
    connected, disconnected = receiver.wait_for(2)
    time.sleep(0.1)
    assert len(receiver.received) == 2
    assert (connected.event, disconnected.event) == ("phone.connected", "phone.disconnected")
    for delivery, status in ((connected, "connected"), (disconnected, "disconnected")):
        event = webhooks.verify(delivery.body, delivery.signature, SECRET)
        assert isinstance(event, PhoneEvent)
        assert verify_signature(delivery.body.decode(), delivery.signature, SECRET)
        data = json.loads(delivery.body)["data"]
        assert set(data) == expected_keys
        assert (data[id_key], data[status_key]) == (SEED.disconnected_phone_id, status)
    client = chatmaid_sandbox.client(requests_per_minute=None)
    with client:
        phone = client.get_phone_status(SEED.disconnected_phone_id)
    assert phone.connection_status == "disconnected"
    assert phone.last_disconnected_at is not None
    assert phone.last_connected_at is not None
    assert phone.last_disconnected_at >= phone.last_connected_at
