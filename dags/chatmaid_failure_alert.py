"""Freshness gate: page the team on WhatsApp when a partner feed is stale.

``check_feed_freshness`` fails when the feed is older than ``max_age_hours``; its
``on_failure_callback`` is a ``ChatmaidNotifier``, so the team hears about it at once
and ``load_feed`` never loads stale data. With the default params the feed is stale:
the run fails by design and the alert goes out. Replace ``feed_age_hours`` with a
real check (object storage timestamp, ``MAX(updated_at)``...).

Needs the connection ``chatmaid_default`` (see docs/airflow.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from chatmaid_airflow.notifications.chatmaid import send_chatmaid_notification

with DAG(
    dag_id="chatmaid_failure_alert",
    description="Alert on WhatsApp when the partner feed is stale",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["chatmaid", "example"],
    params={
        "feed_age_hours": Param(30, type="number", minimum=0),
        "max_age_hours": Param(24, type="number", minimum=0),
    },
) as dag:

    @task(
        on_failure_callback=send_chatmaid_notification(
            to=["+15557654321", "+15557654322"],
            content=(
                "{{ dag.dag_id }}: {{ ti.task_id }} failed for "
                "{{ dag_run.run_after | ds }} "
                "(try {{ ti.try_number }}): {{ exception }}"
            ),
        )
    )
    def check_feed_freshness(params: dict[str, Any]) -> float:
        age, limit = params["feed_age_hours"], params["max_age_hours"]
        if age > limit:
            raise ValueError(f"partner feed is {age}h old (limit {limit}h)")
        return float(age)

    @task
    def load_feed(age_hours: float) -> str:
        return f"loaded a feed {age_hours}h old"

    load_feed(check_feed_freshness())

if __name__ == "__main__":
    dag.test()
