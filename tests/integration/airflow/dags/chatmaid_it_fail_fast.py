"""Test DAG: errors a retry cannot fix fail at once, transient ones are retried.

Every task allows one retry and sends through its own connection, which the test
defines (``chatmaid_missing`` it leaves undefined).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator

DISCONNECTED_PHONE = "507f1f77bcf86cd799439012"  # the sandbox's seed phone that is offline
TO = "+15557654321"

with DAG(
    dag_id="chatmaid_it_fail_fast",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    default_args={"retries": 1, "retry_delay": timedelta(0)},
) as dag:
    for conn in ("wrong_key", "no_key", "missing", "no_scope", "no_scheme", "unreachable"):
        ChatmaidSendMessageOperator(
            task_id=conn, chatmaid_conn_id=f"chatmaid_{conn}", to=TO, content=f"through {conn}"
        )
    ChatmaidSendMessageOperator(
        task_id="sender_offline",
        chatmaid_conn_id="chatmaid_live",
        from_phone=DISCONNECTED_PHONE,
        to=TO,
        content="from an offline phone",
    )
    ChatmaidSendMessageOperator(task_id="not_e164", to="5557654321", content="no plus")
    first = ChatmaidSendMessageOperator(
        task_id="keyed", idempotency_key="it-fail-fast", to=TO, content="the first text"
    )
    second = ChatmaidSendMessageOperator(
        task_id="same_key_other_text",
        idempotency_key="it-fail-fast",
        to=TO,
        content="another text",
    )
    first >> second
