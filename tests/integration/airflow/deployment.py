"""A real Airflow deployment for tests: api-server, scheduler, dag-processor, triggerer.

LocalExecutor on SQLite in a throwaway AIRFLOW_HOME, the api-server on a free loopback
port, every process started once and stopped (its whole process group) at the end.
The REST API is driven the way a user would: a token from the simple auth manager,
DAGs unpaused and triggered with ``logical_date: null`` (Airflow 3's manual runs).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Deployment:
    """A running deployment: its REST API and its files."""

    def __init__(self, home: Path, api: httpx.Client, logs: dict[str, Path]) -> None:
        self.home = home
        self.api = api
        self.service_logs = logs

    def wait_for(self, what: str, probe: Callable[[], T | None], *, timeout: float = 240.0) -> T:
        """Poll ``probe`` until it returns something; fail with the service logs if never."""
        return _poll(what, probe, timeout=timeout, logs=self.service_logs)

    def tails(self) -> str:
        """The end of every service's log, for failure messages."""
        return _tails(self.service_logs)

    def trigger(self, dag_id: str) -> str:
        """Unpause ``dag_id`` once it is parsed, trigger a manual run, return its run id."""
        self.wait_for(f"{dag_id} to be parsed", lambda: self._get(f"/api/v2/dags/{dag_id}"))
        self.api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        response = self.api.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
        response.raise_for_status()
        run_id: str = response.json()["dag_run_id"]
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The run's state once it is final."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"

        def final() -> str | None:
            state = self._get(path)["state"]
            return str(state) if state in TERMINAL_RUN_STATES else None

        return self.wait_for(f"run {run_id} of {dag_id} to finish", final)

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """One task instance as the REST API shows it (state, trigger...)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        return self._get(path) or {}

    def deferred_task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """Wait until the task instance is ``deferred`` with its trigger row; return it."""

        def deferred() -> dict[str, Any] | None:
            ti = self.task_instance(dag_id, run_id, task_id)
            return ti if ti.get("state") == "deferred" and ti.get("trigger") else None

        return self.wait_for(f"{task_id} to be deferred with a trigger", deferred)

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
        """Every task instance's final state, by (task id, map index)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        instances = self._get(path)["task_instances"]
        return {(ti["task_id"], ti["map_index"]): ti["state"] for ti in instances}

    def extra_links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        """A task instance's extra links (name to URL), as the UI gets them."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links"
        links: dict[str, str | None] = self._get(path)["extra_links"]
        return links

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """What the first try of a task instance logged so far ("" before it starts)."""
        path = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        attempt = path / "attempt=1.log"
        return attempt.read_text(errors="replace") if attempt.is_file() else ""

    def task_logs(self) -> str:
        """Every task and service log the deployment wrote."""
        files = [*self.home.joinpath("logs").rglob("*.log"), *self.service_logs.values()]
        return "\n".join(path.read_text(errors="replace") for path in files if path.is_file())

    def _get(self, path: str) -> Any:
        response = self.api.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()


@contextmanager
def run_deployment(
    home: Path, dag_files: list[Path], connections: Mapping[str, Mapping[str, Any]]
) -> Iterator[Deployment]:
    """Start the four services on a fresh home with ``dag_files`` and ``connections``."""
    dags = home / "dags"
    dags.mkdir(parents=True)
    for dag_file in dag_files:
        dags.joinpath(dag_file.name).write_bytes(dag_file.read_bytes())
    port = free_port()
    env = _environment(home, port, connections)
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    logs = {service: home / f"{service}.out" for service in SERVICES}
    sessions: set[int] = set()  # each service leads its own session
    with ExitStack() as stack:
        for service in SERVICES:
            extra = ["--host", "127.0.0.1", "--port", str(port)] if service == "api-server" else []
            out = stack.enter_context(logs[service].open("wb"))
            process = subprocess.Popen(  # noqa: S603
                [*airflow, service, *extra],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(_stop, process)
            sessions.add(process.pid)
        base_url = f"http://127.0.0.1:{port}"
        token = _poll("the api-server", lambda: _token(base_url), timeout=240.0, logs=logs)
        api = stack.enter_context(
            httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
        )
        yield Deployment(home, api, logs)
    left = _processes_in_sessions(sessions)
    assert not left, f"processes of the deployment still running after it stopped: {left}"


def _environment(
    home: Path, port: int, connections: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the UI's Test button
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # Only the runs a test triggers: no scheduled run when a DAG is unpaused.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    for conn_id, connection in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection)
    return env


def _poll(what: str, probe: Callable[[], T | None], *, timeout: float, logs: dict[str, Path]) -> T:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}\n{_tails(logs)}")


def _tails(logs: dict[str, Path]) -> str:
    return "\n".join(
        f"--- {name} ---\n{path.read_text(errors='replace')[-3000:]}" for name, path in logs.items()
    )


def _token(base_url: str) -> str | None:
    try:
        response = httpx.get(f"{base_url}/auth/token", timeout=10)
    except httpx.TransportError:
        return None
    if response.status_code >= 400:
        return None
    token: str = response.json()["access_token"]
    return token


def _processes_in_sessions(sessions: set[int]) -> list[str]:
    """The command lines of live processes in ``sessions`` (read from ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) not in sessions:
                continue
            command = entry.joinpath("cmdline").read_bytes().replace(b"\0", b" ")
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
        found.append(f"{entry.name}: {command.decode(errors='replace').strip()}")
    return found


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a service and every process it started (task runners, gunicorn workers...)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            continue
    process.wait()
