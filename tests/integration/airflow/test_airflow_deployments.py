"""Several deployments of one DAG on one Chatmaid account, through the Airflow adapter.

Staging (a test key) and production (a live key) run the same DAG with the same dag,
task and run ids; a second production deployment sets ``idempotency_namespace``; a
third forgets to. Each home is its own Airflow database, as each deployment's is.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from typing import Any

import pytest

from chatmaid.sandbox import SandboxHandle
from chatmaid_airflow.testing import DagRunResult, DagTestHome, chatmaid_connection

from .conftest import DAG_FILES, Messages

pytestmark = pytest.mark.integration

DAG_FILE = "chatmaid_it_deployments.py"
RUN_DATE = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # one run of the DAG, everywhere


@pytest.fixture
def deployment_homes(tmp_path_factory: pytest.TempPathFactory) -> list[DagTestHome]:
    """Four fresh Airflow homes: one migrated, three copies of it (made before any run)."""
    dags = [path for path in DAG_FILES if path.name == DAG_FILE]
    first = DagTestHome.create(tmp_path_factory.mktemp("deployment-0"), dags)
    homes = [first]
    for index in range(1, 4):
        root = tmp_path_factory.mktemp(f"deployment-{index}")
        shutil.copytree(first.root, root, dirs_exist_ok=True)
        homes.append(DagTestHome(root))
    return homes


def test_deployments_sharing_run_ids_never_get_each_others_messages(
    deployment_homes: list[DagTestHome], chatmaid_sandbox: SandboxHandle, sent_messages: Messages
) -> None:
    sandbox = chatmaid_sandbox
    staging_home, production_home, eu_home, forgetful_home = deployment_homes

    def run(home: DagTestHome, api_key: str, to: str, text: str, **extra: Any) -> DagRunResult:
        connection = chatmaid_connection(sandbox.url, api_key, **extra)
        return home.run(
            DAG_FILE,
            connections={"chatmaid_default": connection},
            conf={"to": to, "text": text},
            logical_date=RUN_DATE,
        )

    staging = run(staging_home, sandbox.test_key, "+15557654321", "[STAGING] KPI dropped 20%")
    production = run(production_home, sandbox.live_key, "+15559990001", "[PROD] KPI dropped 20%")
    eu = run(eu_home, sandbox.live_key, "+15559990002", "[PROD EU] KPI dropped 20%",
             idempotency_namespace="prod-eu")  # fmt: skip
    forgetful = run(forgetful_home, sandbox.live_key, "+15559990003", "[PROD US] KPI dropped")

    assert {staging.run_id, production.run_id, eu.run_id, forgetful.run_id} == {
        "manual__2026-11-30T06:00:00+00:00"
    }
    for result in (staging, production, eu):
        assert result.state == "success", result.output[-5000:]
    sent = {m["id"]: m for m in sent_messages()}
    assert sorted((m["to"], m["environment"], m["content"]) for m in sent.values()) == [
        ("+15557654321", "test", "[STAGING] KPI dropped 20%"),
        ("+15559990001", "live", "[PROD] KPI dropped 20%"),
        ("+15559990002", "live", "[PROD EU] KPI dropped 20%"),
    ]
    for result, to in ((staging, "+15557654321"), (production, "+15559990001"),
                       (eu, "+15559990002")):  # fmt: skip
        message = result.xcom("alert")
        assert (message["to"], message["reused"]) == (to, False)
        assert sent[message["id"]]["to"] == to
    # Production without a namespace of its own met production's key: it fails at once
    # (the retry the task allows would meet the same message), and says why.
    assert forgetful.state == "failed"
    assert forgetful.task("alert").state == "failed"
    assert forgetful.task("alert").try_number == 1
    out = forgetful.output
    assert "IdempotencyConflictError" in out
    assert f"already belongs to message {production.xcom('alert')['id']}" in out
    assert "to: asked '+15559990003', got '+15559990001'" in out
    for result in (staging, production, eu, forgetful):
        assert sandbox.test_key not in result.output
        assert sandbox.live_key not in result.output
