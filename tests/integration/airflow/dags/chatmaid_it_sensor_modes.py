"""Test DAG: one live message watched by the sensor in poke and in reschedule mode."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator
from chatmaid_airflow.sensors.chatmaid import ChatmaidMessageSensor

with DAG(
    dag_id="chatmaid_it_sensor_modes",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    default_args={"chatmaid_conn_id": "chatmaid_live"},
) as dag:
    send = ChatmaidSendMessageOperator(task_id="send", to="+15557654321", content="watch me")
    for mode in ("poke", "reschedule"):
        send >> ChatmaidMessageSensor(
            task_id=f"wait_{mode}",
            message_id="{{ ti.xcom_pull(task_ids='send', key='message_id') }}",
            mode=mode,
            poke_interval=0.5,
            timeout=60,
            deferrable=False,
        )
