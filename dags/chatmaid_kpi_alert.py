"""Daily KPI alert: WhatsApp the data team when yesterday's orders drop below their average.

``measure_orders`` compares the latest day with the average of the days before it;
``crossed_threshold`` lets the alert through only when the drop is at least
``threshold_pct`` percent. Replace the ``orders`` param with your warehouse query (for
example a ``SQLExecuteQueryOperator`` or a hook call inside ``measure_orders``).

Needs the connection ``chatmaid_default`` (see docs/airflow.md).
"""

from __future__ import annotations

from datetime import datetime
from statistics import mean
from typing import Any

from airflow.sdk import DAG, Param, task

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator

with DAG(
    dag_id="chatmaid_kpi_alert",
    description="Alert the data team on WhatsApp when daily orders drop",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["chatmaid", "example"],
    params={
        "orders": Param(
            [1040, 990, 1010, 1075, 960, 1005, 1020, 760],
            type="array",
            description="Daily order counts, oldest first; the last one is the day checked.",
        ),
        "threshold_pct": Param(20, type="number", minimum=0),
        "recipient": Param("+15557654321", type="string"),
    },
) as dag:

    @task
    def measure_orders(params: dict[str, Any]) -> dict[str, Any]:
        *history, latest = params["orders"]
        baseline = mean(history)
        return {
            "orders": latest,
            "baseline": round(baseline),
            "change_pct": round((latest - baseline) / baseline * 100, 1),
        }

    @task.short_circuit
    def crossed_threshold(kpi: dict[str, Any], params: dict[str, Any]) -> bool:
        return bool(kpi["change_pct"] <= -params["threshold_pct"])

    kpi = measure_orders()
    alert = ChatmaidSendMessageOperator(
        task_id="alert_data_team",
        to="{{ params.recipient }}",
        content=(
            # run_after is set on scheduled, manual and asset-triggered runs alike (a
            # manual run has no logical date, so no {{ ds }}).
            "Orders on {{ dag_run.run_after | ds }}: "
            "{{ ti.xcom_pull(task_ids='measure_orders')['orders'] }} "
            "({{ ti.xcom_pull(task_ids='measure_orders')['change_pct'] }}% vs the "
            "{{ ti.xcom_pull(task_ids='measure_orders')['baseline'] }} average). "
            "Dashboard: https://bi.example.com/orders"
        ),
    )
    crossed_threshold(kpi) >> alert

if __name__ == "__main__":
    dag.test()
