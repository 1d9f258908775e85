"""``make demo``, Airflow part: the example KPI alert DAG, run for real against a sandbox.

``run_airflow_demo(sandbox_url, api_key)`` makes a throwaway Airflow home (SQLite),
runs ``dags/chatmaid_kpi_alert.py`` once with ``dag.test()`` and prints the task states
and the message as the sandbox holds it. Run alone, it starts its own sandbox::

    python scripts/demo_airflow.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from chatmaid.sandbox import Admin, run_sandbox
from chatmaid_airflow.testing import DagTestHome, chatmaid_connection

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "chatmaid_kpi_alert.py"
ALERT_TASK = "alert_data_team"


def run_airflow_demo(sandbox_url: str, api_key: str) -> None:
    """Run the KPI alert DAG against the sandbox at ``sandbox_url`` and show what it sent."""
    print(f"Airflow: dag.test() of {DAG_FILE.name} in a throwaway Airflow home (SQLite)")
    with tempfile.TemporaryDirectory(prefix="chatmaid-airflow-demo-") as root:
        home = DagTestHome.create(Path(root), [DAG_FILE])
        result = home.run(
            DAG_FILE.name,
            connections={"chatmaid_default": chatmaid_connection(sandbox_url, api_key)},
        )
    if result.state != "success":
        raise RuntimeError(f"the DAG run ended {result.state}:\n{result.output[-5000:]}")
    kpi = result.xcom("measure_orders")
    print(f"  run {result.run_id}: {result.state} in {result.seconds:.1f}s")
    for task in sorted(result.tasks, key=lambda t: t.task_id):
        print(f"  {task.task_id:<18} {task.state}")
    print(f"  orders {kpi['orders']} vs a {kpi['baseline']} average: {kpi['change_pct']:+}%")
    message_id = result.xcom(ALERT_TASK)["id"]
    with Admin(sandbox_url) as admin:
        (sent,) = [m for m in admin.messages() if m["id"] == message_id]
    print("  sent, as the sandbox holds it:")
    print(f"    {sent['id']} {sent['from']} -> {sent['to']} [{sent['status']}]")
    print(f"    {sent['content']!r}")
    print(f"    idempotency key {sent['idempotencyKey']} (from dag, task, run and map index)")


if __name__ == "__main__":
    with run_sandbox() as sandbox:
        run_airflow_demo(sandbox.url, sandbox.test_key)
