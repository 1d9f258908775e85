"""What the provider promises, proven with real runs: one message per send, clear failures,
every sensor mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chatmaid.sandbox import SandboxHandle

from .conftest import RunDag

pytestmark = pytest.mark.integration

Messages = Callable[[], list[dict[str, Any]]]


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
