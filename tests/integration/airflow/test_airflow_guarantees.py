"""What the provider promises, proven with real runs: one message per send, clear failures,
every sensor mode."""

from __future__ import annotations

from typing import Any

import pytest

from chatmaid.sandbox import SandboxHandle
from chatmaid_airflow.testing import chatmaid_connection

from .conftest import Messages, RunDag

pytestmark = pytest.mark.integration


def test_a_task_retried_after_its_send_leaves_one_message(
    run_dag: RunDag, sent_messages: Messages, chatmaid_sandbox: SandboxHandle
) -> None:
    result = run_dag("chatmaid_it_retries.py")

    assert result.state == "success", result.output[-5000:]
    for task, index in [("send_once", -1), ("send_mapped", 0), ("send_mapped", 1)]:
        assert result.task(task, index).try_number == 2
    assert result.output.count("worker lost right after the send") >= 3
    assert result.output.count("worker lost while resuming") >= 1
    by_recipient: dict[str, list[dict[str, Any]]] = {}
    for message in sent_messages():
        by_recipient.setdefault(message["to"], []).append(message)
    assert {to: len(found) for to, found in by_recipient.items()} == {
        "+15557654321": 1,
        "+15557654322": 1,
        "+15557654323": 1,
        "+15557654324": 1,
    }
    # Both tries sent, with one key: the API answered the retry with the original.
    sends = chatmaid_sandbox.admin.requests()["byEndpoint"]["POST /v1/messages/send"]
    assert sends["201"] == 8
    assert result.xcom("send_once")["id"] == by_recipient["+15557654321"][0]["id"]
    deferred = result.xcom("wait_then_crash")
    assert (deferred["status"], deferred["environment"]) == ("sent", "live")
    assert deferred["id"] == by_recipient["+15557654324"][0]["id"]
    # Each retry got the first try's message back, and says it sent nothing.
    retried = [result.xcom("send_once"), *result.mapped_xcoms("send_mapped"), deferred]
    assert [xcom["reused"] for xcom in retried] == [True] * 4
    assert result.output.count("was already sent by an earlier try; not sent again") == 4
    for message in sent_messages():
        assert f"Chatmaid message {message['id']} to {message['to']} is " in result.output


def test_live_failures_and_timeouts_fail_with_the_reason(
    run_dag: RunDag, sent_messages: Messages, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=1.5)
    result = run_dag("chatmaid_it_live_failures.py")
    out = result.output

    assert result.state == "failed"
    failed = {t.task_id for t in result.tasks if t.state == "failed"}
    assert failed == {"wait_in_worker", "times_out", "sensor_fails_fast"}
    # A failed delivery is final: no retry although the task allows two.
    assert result.task("wait_in_worker").try_number == 1
    assert "to +15557650000 failed: INVALID_RECIPIENT: Recipient is not a WhatsApp user" in out
    assert "to +15557650001 failed: RECIPIENT_NOT_REACHABLE: Message could not be delivered" in out
    assert "still 'pending' at the end of its wait" in out
    accepted = result.xcom("accept_failure")
    assert (accepted["status"], accepted["errorCode"]) == ("failed", "INVALID_RECIPIENT")
    assert result.xcom("send_only")["status"] == "pending"
    assert len(sent_messages()) == 4
    assert chatmaid_sandbox.live_key not in out


@pytest.mark.usefixtures("settle_once_polled")
def test_sensor_poke_and_reschedule_modes(
    run_dag: RunDag, sent_messages: Messages, chatmaid_sandbox: SandboxHandle
) -> None:
    result = run_dag("chatmaid_it_sensor_modes.py")

    assert result.state == "success", result.output[-5000:]
    messages = {m["content"]: m for m in sent_messages()}
    for mode in ("reschedule", "poke"):
        seen = result.xcom(f"wait_{mode}")
        assert (seen["id"], seen["status"]) == (messages[f"watched in {mode} mode"]["id"], "sent")
    assert "up_for_reschedule" in result.output.lower()
    polls = chatmaid_sandbox.admin.requests()["byEndpoint"]["GET /v1/messages/{messageId}"]
    assert polls["200"] >= 4  # each mode saw its message pending before it was sent


def test_errors_a_retry_cannot_fix_fail_at_once_and_say_where(
    run_dag: RunDag, sent_messages: Messages, chatmaid_sandbox: SandboxHandle
) -> None:
    sandbox = chatmaid_sandbox
    host = sandbox.url.removeprefix("http://")
    no_scope = sandbox.admin.create_api_key(scopes=["account:read"])["key"]
    wrong_key = "sk_test_not_a_key_of_this_account"
    result = run_dag(
        "chatmaid_it_fail_fast.py",
        connections={
            "chatmaid_wrong_key": chatmaid_connection(sandbox.url, wrong_key),
            "chatmaid_no_key": {"conn_type": "chatmaid", "host": sandbox.url},
            "chatmaid_no_scope": chatmaid_connection(sandbox.url, no_scope),
            "chatmaid_no_scheme": chatmaid_connection(host, sandbox.test_key),
            "chatmaid_unreachable": chatmaid_connection(
                "http://127.0.0.1:1", sandbox.test_key, max_retries=0
            ),
        },
    )
    out = result.output

    states = {t.task_id: (t.state, t.try_number) for t in result.tasks}
    fatal = ["wrong_key", "no_key", "missing", "no_scope", "no_scheme", "sender_offline"]
    assert states == {
        **dict.fromkeys([*fatal, "not_e164", "same_key_other_text"], ("failed", 1)),
        "unreachable": ("failed", 2),  # transient: retried
        "keyed": ("success", 1),
    }
    at = f"host {host})"
    for expected in [
        f"Chatmaid (connection 'chatmaid_wrong_key', {at}: HTTP 401 Unauthorized on "
        "/v1/phone-numbers: Invalid API key; check the API key in the connection's password",
        f"Chatmaid (connection 'chatmaid_no_key', {at}: no API key: put sk_test_... or "
        "sk_live_... in the connection's password field (API key)",
        "Chatmaid connection 'chatmaid_missing' is not defined: add it under Admin > "
        "Connections (type Chatmaid), or set AIRFLOW_CONN_CHATMAID_MISSING",
        f"Chatmaid (connection 'chatmaid_no_scope', {at}: HTTP 403 Forbidden on /v1/phone-numbers",
        f"Chatmaid (connection 'chatmaid_no_scheme', {at}: the Base URL (host) '{host}' has no "
        f"scheme: write https://{host}, or http://{host} for a local sandbox",
        f"Chatmaid (connection 'chatmaid_live', {at}: HTTP 400 Bad Request on /v1/messages/send",
        f"Chatmaid (connection 'chatmaid_default', {at}: invalid send_message: Phone number "
        "must be in E.164 format (e.g., +1987654321); got '5557654321'; fix the task's arguments",
        f"Chatmaid (connection 'chatmaid_default', {at}: idempotency key 'it-fail-fast' already "
        "belongs to message msg_",
        "Chatmaid (connection 'chatmaid_unreachable', host 127.0.0.1:1): ConnectError: ",
    ]:
        assert expected in out
    assert out.count("check the connection's Base URL if this persists") >= 2  # both tries
    (kept,) = sent_messages()
    assert kept["content"] == "the first text"
    for secret in (sandbox.test_key, sandbox.live_key, wrong_key, no_scope):
        assert secret not in out
