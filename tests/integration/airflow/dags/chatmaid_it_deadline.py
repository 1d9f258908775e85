"""Test DAG: a deadline alert, sent by ``ChatmaidNotifier`` as an ``AsyncCallback``.

The deadline passes one second after the run is queued, and the triggerer sends the
alert. ``wait_for_the_alert`` keeps the run going until the sandbox holds the alert
(it reads the sandbox's admin API at the connection's host), so the run is late
however slow the machine, and ends once the alert went out.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import DAG, BaseHook, task
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from chatmaid_airflow.notifications.chatmaid import ChatmaidNotifier

LATE = "missed its deadline"

with DAG(
    dag_id="chatmaid_it_deadline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=1),
        callback=AsyncCallback(
            ChatmaidNotifier,
            kwargs={
                "to": "+15557654329",
                "content": "{{ dag_run.dag_id }} run {{ dag_run.run_id }} of "
                f"{{{{ dag_run.run_after | ds }}}} {LATE}",
            },
        ),
    ),
) as dag:

    @task
    def wait_for_the_alert() -> str:
        sandbox = BaseHook.get_connection("chatmaid_default").host
        end = time.monotonic() + 120
        while time.monotonic() < end:
            messages = httpx.get(f"{sandbox}/_sandbox/messages").json()["data"]
            for message in messages:
                if LATE in (message.get("content") or ""):
                    return str(message["content"])
            time.sleep(0.5)
        raise AirflowFailException("no deadline alert reached the sandbox in 120 s")

    wait_for_the_alert()
