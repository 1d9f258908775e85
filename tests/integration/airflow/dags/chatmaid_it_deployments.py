"""Test DAG: one DAG deployed twice or more (staging, production) on one Chatmaid account.

Each deployment runs it with the same dag, task and run ids, so the operator derives
the same idempotency key everywhere but for the key's environment and the connection's
``idempotency_namespace``. The recipient and the text come from the run's conf.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator

with DAG(
    dag_id="chatmaid_it_deployments",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"to": "+15557654321", "text": "KPI dropped 20%"},
    default_args={"retries": 1, "retry_delay": timedelta(0)},
) as dag:
    ChatmaidSendMessageOperator(task_id="alert", to="{{ params.to }}", content="{{ params.text }}")
