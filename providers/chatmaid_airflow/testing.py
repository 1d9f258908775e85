"""Run DAGs with ``dag.test()`` in a throwaway Airflow home: for tests, demos and CI.

Example (against a local Chatmaid sandbox)::

    home = DagTestHome.create(tmp_path, ["dags/chatmaid_kpi_alert.py"])
    result = home.run(
        "chatmaid_kpi_alert.py",
        connections={"chatmaid_default": chatmaid_connection(sandbox.url, sandbox.test_key)},
    )
    assert result.state == "success"
    result.xcom("alert_data_team")  # the message the task sent

A home is a directory with a ``dags/`` folder (``dag.test()`` only runs DAGs inside
the DAGs folder) and an SQLite database, migrated once. Every run is a fresh Python
process, so no Airflow state leaks from one run into the next; connections are given
as ``AIRFLOW_CONN_*`` variables of that process.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

_RESULT_MARK = "CHATMAID_DAG_TEST_RESULT "


def chatmaid_connection(base_url: str, api_key: str, **extra: Any) -> dict[str, Any]:
    """A Chatmaid connection in Airflow's JSON form (for ``DagTestHome.run``)."""
    connection: dict[str, Any] = {"conn_type": "chatmaid", "host": base_url, "password": api_key}
    if extra:
        connection["extra"] = extra
    return connection


@dataclass(frozen=True)
class TaskResult:
    """One task instance at the end of a run."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int


@dataclass(frozen=True)
class DagRunResult:
    """What a ``dag.test()`` run left behind: states, XComs and the process output."""

    dag_id: str
    run_id: str
    state: str
    tasks: list[TaskResult]
    xcoms: list[dict[str, Any]]
    seconds: float
    output: str = field(repr=False)

    def task(self, task_id: str, map_index: int = -1) -> TaskResult:
        """The task instance ``task_id`` (``map_index`` for a mapped one)."""
        for task in self.tasks:
            if (task.task_id, task.map_index) == (task_id, map_index):
                return task
        raise KeyError(f"no task instance {task_id}[{map_index}] in {self.tasks}")

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """One XCom value."""
        for xcom in self.xcoms:
            if (xcom["task_id"], xcom["key"], xcom["map_index"]) == (task_id, key, map_index):
                return xcom["value"]
        raise KeyError(f"no XCom {key!r} of {task_id}[{map_index}]")

    def mapped_xcoms(self, task_id: str, key: str = "return_value") -> list[Any]:
        """The XCom values of every map index of a mapped task, in map index order."""
        found = [x for x in self.xcoms if (x["task_id"], x["key"]) == (task_id, key)]
        return [x["value"] for x in sorted(found, key=lambda x: int(x["map_index"]))]


class DagTestHome:
    """An Airflow home for ``dag.test()`` runs; ``create`` makes and migrates one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dags_folder = root / "dags"

    @classmethod
    def create(cls, root: Path, dag_files: Iterable[str | Path]) -> DagTestHome:
        """Copy ``dag_files`` into ``root/dags`` and migrate a new SQLite database."""
        home = cls(root)
        home.dags_folder.mkdir(parents=True, exist_ok=True)
        for dag_file in dag_files:
            shutil.copy(dag_file, home.dags_folder)
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=home.environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout}{migrate.stderr}")
        return home

    def environment(
        self, connections: Mapping[str, Mapping[str, Any] | str] | None = None
    ) -> dict[str, str]:
        """The environment of a process using this home, with ``AIRFLOW_CONN_*`` set.

        A connection is a JSON-form mapping or a URI string.
        """
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.root),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.root / 'airflow.db'}",
            }
        )
        for conn_id, connection in (connections or {}).items():
            value = connection if isinstance(connection, str) else json.dumps(connection)
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        return env

    def run(
        self,
        dag_file: str,
        *,
        dag_id: str | None = None,
        connections: Mapping[str, Mapping[str, Any] | str] | None = None,
        conf: Mapping[str, Any] | None = None,
        logical_date: datetime | None = None,
        timeout: float = 180.0,
    ) -> DagRunResult:
        """Run the DAG of ``dag_file`` (a file in the DAGs folder) once with ``dag.test()``.

        ``dag_id`` picks one DAG when the file defines several; ``conf`` is the run's
        conf (its params); ``logical_date`` (also its run-after date) makes the run id
        ``manual__<logical_date>``, as another deployment's run of that date would have.
        """
        command = [
            sys.executable,
            "-m",
            "chatmaid_airflow.testing",
            str(self.dags_folder / dag_file),
        ]
        command += ["--dag-id", dag_id or "", "--conf", json.dumps(dict(conf or {}))]
        if logical_date is not None:
            command += ["--logical-date", logical_date.isoformat()]
        started = time.monotonic()
        process = subprocess.run(  # noqa: S603
            command,
            env=self.environment(connections),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = process.stdout + process.stderr
        marked = [line for line in process.stdout.splitlines() if line.startswith(_RESULT_MARK)]
        if not marked:
            raise RuntimeError(f"dag.test() of {dag_file} gave no result:\n{output[-20000:]}")
        summary = json.loads(marked[-1][len(_RESULT_MARK) :])
        return DagRunResult(
            dag_id=summary["dag_id"],
            run_id=summary["run_id"],
            state=summary["state"],
            tasks=[TaskResult(**task) for task in summary["tasks"]],
            xcoms=summary["xcoms"],
            seconds=time.monotonic() - started,
            output=output,
        )


def _run_dag_test(
    dag_file: str, dag_id: str, conf: dict[str, Any], logical_date: datetime | None
) -> dict[str, Any]:
    """In the child process: run the DAG and summarise the run from the database."""
    from airflow.models.xcom import XComModel
    from airflow.sdk import DAG
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dags = [value for value in runpy.run_path(dag_file).values() if isinstance(value, DAG)]
    dag = next(d for d in dags if d.dag_id == dag_id) if dag_id else dags[0]
    if logical_date is None:
        run = dag.test(run_conf=conf)
    else:
        run = dag.test(run_after=logical_date, logical_date=logical_date, run_conf=conf)
    tasks = [
        {
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "state": None if ti.state is None else str(ti.state),
            "try_number": ti.try_number,
        }
        for ti in run.get_task_instances()
    ]
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag.dag_id, XComModel.run_id == run.run_id)
        ).all()
        xcoms = [
            {
                "task_id": row.task_id,
                "map_index": row.map_index,
                "key": row.key,
                "value": XComModel.deserialize_value(row),
            }
            for row in rows
        ]
    return {
        "dag_id": dag.dag_id,
        "run_id": run.run_id,
        "state": str(run.state),
        "tasks": tasks,
        "xcoms": xcoms,
    }


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m chatmaid_airflow.testing")
    parser.add_argument("dag_file")
    parser.add_argument("--dag-id", default="")
    parser.add_argument("--conf", default="{}")
    parser.add_argument("--logical-date", type=datetime.fromisoformat, default=None)
    args = parser.parse_args(argv)
    summary = _run_dag_test(args.dag_file, args.dag_id, json.loads(args.conf), args.logical_date)
    print(_RESULT_MARK + json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
