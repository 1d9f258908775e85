"""Maintenance window: confirm the on-call engineer got the WhatsApp before starting.

``notify_on_call`` sends and waits for ``sent`` in the triggerer (deferrable: no worker
slot is held while waiting); a ``failed`` delivery fails the task with Chatmaid's
error code, so maintenance never starts unannounced. ``announce`` tells the team
without waiting, and ``confirm_announcement`` (a deferrable sensor) watches that
message while the maintenance runs.

Needs the connection ``chatmaid_default`` (see docs/airflow.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator
from chatmaid_airflow.sensors.chatmaid import ChatmaidMessageSensor

with DAG(
    dag_id="chatmaid_send_and_wait",
    description="Announce a maintenance window on WhatsApp and wait for delivery",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["chatmaid", "example"],
) as dag:
    notify_on_call = ChatmaidSendMessageOperator(
        task_id="notify_on_call",
        to="+15557654321",
        content="Maintenance of the orders DB starts now (run {{ run_id }}).",
        wait_for_delivery=True,
        deferrable=True,
        delivery_timeout=timedelta(minutes=10),
    )

    @task
    def start_maintenance(delivered: dict[str, Any]) -> str:
        # Your maintenance step goes here; it runs only once the on-call was reached.
        return f"on-call notified by {delivered['id']} at {delivered['sentAt']}"

    announce = ChatmaidSendMessageOperator(
        task_id="announce",
        to="+15557654322",
        content="Orders DB maintenance in progress; dashboards may lag for an hour.",
    )
    confirm_announcement = ChatmaidMessageSensor(
        task_id="confirm_announcement",
        message_id=announce.output["message_id"],
        deferrable=True,
        poke_interval=2,
        timeout=timedelta(minutes=15),
    )

    start_maintenance(notify_on_call.output) >> announce >> confirm_announcement

if __name__ == "__main__":
    dag.test()
