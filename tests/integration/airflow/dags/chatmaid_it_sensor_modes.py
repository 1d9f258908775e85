"""Test DAG: a live message watched in reschedule mode, then another in poke mode.

The two pairs run one after the other so that each sensor meets a pending message.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, chain

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator
from chatmaid_airflow.sensors.chatmaid import ChatmaidMessageSensor

with DAG(
    dag_id="chatmaid_it_sensor_modes",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    default_args={"chatmaid_conn_id": "chatmaid_live"},
) as dag:
    steps = []
    for mode in ("reschedule", "poke"):
        send = ChatmaidSendMessageOperator(
            task_id=f"send_{mode}", to="+15557654321", content=f"watched in {mode} mode"
        )
        wait = ChatmaidMessageSensor(
            task_id=f"wait_{mode}",
            message_id=f"{{{{ ti.xcom_pull(task_ids='send_{mode}', key='message_id') }}}}",
            mode=mode,
            poke_interval=0.5,
            timeout=60,
            deferrable=False,
        )
        steps += [send, wait]
    chain(*steps)
