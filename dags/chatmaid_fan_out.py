"""Weekly report: WhatsApp every subscriber, one mapped task per recipient.

``recipients`` returns the list (swap in a query or a Variable); the send is mapped
over it with ``.expand(to=...)``, so each recipient is its own task instance with its
own idempotency key: a retry of one never re-sends to the others. ``summarize`` sees
every message's status.

Needs the connection ``chatmaid_default`` (see docs/airflow.md).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator

with DAG(
    dag_id="chatmaid_fan_out",
    description="Send the weekly report link to every subscriber on WhatsApp",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["chatmaid", "example"],
    params={
        "subscribers": Param(
            ["+15557654321", "+15557654322", "+15557654323"], type="array", minItems=1
        ),
    },
) as dag:

    @task
    def recipients(params: dict[str, Any]) -> list[str]:
        return sorted(set(params["subscribers"]))

    sends = ChatmaidSendMessageOperator.partial(
        task_id="send_report",
        content=(
            "The weekly report for {{ dag_run.run_after | ds }} is ready: "
            "https://bi.example.com/weekly"
        ),
    ).expand(to=recipients())

    @task
    def summarize(messages: list[dict[str, Any]]) -> dict[str, int]:
        return dict(Counter(message["status"] for message in messages))

    summarize(sends.output)

if __name__ == "__main__":
    dag.test()
