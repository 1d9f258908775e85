"""Test DAG: tasks that fail right after their send, then succeed on the retry.

Each send must leave exactly one message in the sandbox: the retry reuses the
idempotency key derived from the task instance, so the API returns the original (and
the retry says so: ``reused`` in its XCom).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Context

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator


class SendThenCrash(ChatmaidSendMessageOperator):
    """Fails its first try right after the send, as a worker lost at that moment would."""

    def execute(self, context: Context) -> dict[str, Any]:
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost right after the send")
        return result


class WaitThenCrash(ChatmaidSendMessageOperator):
    """Fails its first try when resuming from the trigger, after the message was sent."""

    def execute_complete(
        self, context: Context, event: dict[str, Any], reused: bool = False
    ) -> dict[str, Any]:
        result = super().execute_complete(context, event, reused)
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost while resuming")
        return result


with DAG(
    dag_id="chatmaid_it_retries",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    default_args={"retries": 1, "retry_delay": timedelta(0)},
    params={"connection": "chatmaid_default"},
) as dag:
    SendThenCrash(
        task_id="send_once",
        to="+15557654321",
        content="once {{ run_id }}",
        chatmaid_conn_id="{{ params.connection }}",  # templated: chatmaid_default
    )
    SendThenCrash.partial(task_id="send_mapped", content="mapped {{ run_id }}").expand(
        to=["+15557654322", "+15557654323"]
    )
    WaitThenCrash(
        task_id="wait_then_crash",
        to="+15557654324",
        content="deferred {{ run_id }}",
        chatmaid_conn_id="chatmaid_live",
        wait_for_delivery=True,
        deferrable=True,
        poll_interval=0.2,
    )
