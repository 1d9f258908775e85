"""Test DAG: live-key messages that fail or stay pending, and what each task makes of it.

The sandbox fails recipients ending in 0000 (INVALID_RECIPIENT) and 0001
(RECIPIENT_NOT_REACHABLE) once a live message settles.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator
from chatmaid_airflow.sensors.chatmaid import ChatmaidMessageSensor

with DAG(
    dag_id="chatmaid_it_live_failures",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    default_args={"chatmaid_conn_id": "chatmaid_live"},
) as dag:
    ChatmaidSendMessageOperator(
        task_id="wait_in_worker",
        to="+15557650000",
        content="worker wait",
        wait_for_delivery=True,
        deferrable=False,
        poll_interval=0.2,
        retries=2,
    )
    ChatmaidSendMessageOperator(
        task_id="accept_failure",
        to="+15557650000",
        content="failure accepted",
        wait_for_delivery=True,
        deferrable=True,
        poll_interval=0.2,
        fail_on_delivery_failure=False,
    )
    ChatmaidSendMessageOperator(
        task_id="times_out",
        to="+15557654321",
        content="too slow",
        wait_for_delivery=True,
        deferrable=True,
        delivery_timeout=0.5,
        poll_interval=0.2,
    )
    send_only = ChatmaidSendMessageOperator(
        task_id="send_only", to="+15557650001", content="watched by a sensor"
    )
    send_only >> ChatmaidMessageSensor(
        task_id="sensor_fails_fast",
        message_id="{{ ti.xcom_pull(task_ids='send_only', key='message_id') }}",
        deferrable=True,
        poke_interval=0.2,
        timeout=600,
    )
