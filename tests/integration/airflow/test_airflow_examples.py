"""The example DAGs of ``dags/``, run for real with ``dag.test()`` against the sandbox."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

from chatmaid.sandbox import SandboxHandle

from .conftest import Messages, RunDag

pytestmark = pytest.mark.integration


def test_kpi_alert_sends_the_computed_drop(
    run_dag: RunDag, sent_messages: Messages, chatmaid_sandbox: SandboxHandle
) -> None:
    result = run_dag("chatmaid_kpi_alert.py")

    assert result.state == "success", result.output[-5000:]
    assert result.xcom("measure_orders") == {"orders": 760, "baseline": 1014, "change_pct": -25.1}
    (message,) = sent_messages()
    assert message["to"] == "+15557654321"
    assert message["content"].startswith("Orders on ")
    assert ": 760 (-25.1% vs the 1014 average)" in message["content"]
    assert message["idempotencyKey"].startswith("airflow-")
    alert = result.xcom("alert_data_team")
    assert (alert["id"], alert["status"]) == (message["id"], "sent")
    assert alert["sentAt"] is not None
    assert chatmaid_sandbox.test_key not in result.output


def test_kpi_alert_stays_quiet_below_the_threshold(
    run_dag: RunDag, sent_messages: Messages
) -> None:
    result = run_dag("chatmaid_kpi_alert.py", conf={"orders": [1000, 1010, 990, 950]})

    assert result.state == "success", result.output[-5000:]
    assert result.task("alert_data_team").state == "skipped"
    assert sent_messages() == []


@pytest.mark.usefixtures("settle_once_polled")
def test_send_and_wait_goes_through_the_trigger(
    run_dag: RunDag, sent_messages: Messages, chatmaid_sandbox: SandboxHandle
) -> None:
    result = run_dag("chatmaid_send_and_wait.py", key="live")

    assert result.state == "success", result.output[-5000:]
    # Both waits (operator and sensor) deferred: the trigger ran in line and polled.
    assert result.output.count("[DAG TEST] running trigger in line") == 2
    assert result.output.count("Chatmaid message msg_") >= 4
    messages = {m["to"]: m for m in sent_messages()}
    assert set(messages) == {"+15557654321", "+15557654322"}
    assert {m["environment"] for m in messages.values()} == {"live"}
    delivered = result.xcom("notify_on_call")
    assert (delivered["id"], delivered["status"]) == (messages["+15557654321"]["id"], "sent")
    assert result.xcom("start_maintenance").startswith(f"on-call notified by {delivered['id']}")
    confirmed = result.xcom("confirm_announcement")
    assert (confirmed["id"], confirmed["status"]) == (messages["+15557654322"]["id"], "sent")
    # Each wait polled a pending message at least once before seeing it sent.
    polls = chatmaid_sandbox.admin.requests()["byEndpoint"]["GET /v1/messages/{messageId}"]
    assert polls["200"] >= 4


def test_fan_out_maps_one_send_per_recipient_through_a_429_window(
    run_dag: RunDag, sent_messages: Messages, chatmaid_sandbox: SandboxHandle
) -> None:
    # The first three sends are refused with 429 (Retry-After 1 s); the core waits and
    # retries, so the run is only delayed. The connection comes in URI form.
    chatmaid_sandbox.admin.force_rate_limit(
        600, retry_after=1, method="POST", path="/v1/messages/send", count=3
    )
    host = chatmaid_sandbox.url.removeprefix("http://")
    uri = f"chatmaid://http://:{chatmaid_sandbox.test_key}@{host}/?timeout=5"

    result = run_dag("chatmaid_fan_out.py", connection=uri)

    assert result.state == "success", result.output[-5000:]
    assert chatmaid_sandbox.admin.requests()["byStatus"]["429"] == 3
    messages = sent_messages()
    assert sorted(m["to"] for m in messages) == ["+15557654321", "+15557654322", "+15557654323"]
    assert len({m["idempotencyKey"] for m in messages}) == 3
    mapped = result.mapped_xcoms("send_report")
    assert [m["to"] for m in mapped] == ["+15557654321", "+15557654322", "+15557654323"]
    assert {m["id"] for m in mapped} == {m["id"] for m in messages}
    assert result.xcom("summarize") == {"sent": 3}


def test_failure_alert_notifies_every_recipient(run_dag: RunDag, sent_messages: Messages) -> None:
    result = run_dag("chatmaid_failure_alert.py")

    assert result.state == "failed"  # by design: the feed is stale
    assert result.task("check_feed_freshness").state == "failed"
    assert result.task("load_feed").state == "upstream_failed"
    messages = sent_messages()
    assert sorted(m["to"] for m in messages) == ["+15557654321", "+15557654322"]
    for message in messages:
        if AIRFLOW_V_3_3_PLUS:
            assert message["content"].startswith("chatmaid_failure_alert: check_feed_freshness")
            assert "(try 1): partner feed is 30h old (limit 24h)" in message["content"]
        else:
            # 3.2's dag.test() leaves `exception` out of the callback context (a real
            # deployment has it): the notifier's fallback text goes out instead.
            assert message["content"].startswith(
                "Airflow alert from chatmaid_failure_alert.check_feed_freshness, run manual__"
            )
            assert "content: UndefinedError: 'exception' is undefined" in message["content"]
