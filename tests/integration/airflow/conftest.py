"""Real Airflow runs for the provider's integration tests.

One Airflow home per session (SQLite, migrated once) holds the example DAGs of
``dags/`` and the test DAGs of ``tests/integration/airflow/dags/``; every ``dag.test()``
runs in its own process (``chatmaid_airflow.testing``) against the session's sandbox.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest

from chatmaid.sandbox import SandboxHandle
from chatmaid_airflow.testing import DagRunResult, DagTestHome, chatmaid_connection

REPO = Path(__file__).resolve().parents[3]
DAG_FILES = [
    *sorted((REPO / "dags").glob("chatmaid_*.py")),
    *sorted((Path(__file__).parent / "dags").glob("chatmaid_it_*.py")),
]

Messages = Callable[[], list[dict[str, Any]]]


class RunDag(Protocol):
    def __call__(
        self,
        dag_file: str,
        *,
        key: Literal["test", "live"] = "test",
        connection: dict[str, Any] | str | None = None,
        connections: dict[str, dict[str, Any] | str] | None = None,
        conf: dict[str, Any] | None = None,
    ) -> DagRunResult: ...


@pytest.fixture(scope="session")
def dag_home(tmp_path_factory: pytest.TempPathFactory) -> DagTestHome:
    """The session's Airflow home, with every example and test DAG."""
    return DagTestHome.create(tmp_path_factory.mktemp("airflow-home"), DAG_FILES)


@pytest.fixture
def run_dag(dag_home: DagTestHome, chatmaid_sandbox: SandboxHandle) -> RunDag:
    """Run a DAG file once; ``chatmaid_default`` uses the ``key`` asked for unless
    ``connection`` replaces it, ``chatmaid_live`` always uses the live key; ``connections``
    adds others."""

    def run(
        dag_file: str,
        *,
        key: Literal["test", "live"] = "test",
        connection: dict[str, Any] | str | None = None,
        connections: dict[str, dict[str, Any] | str] | None = None,
        conf: dict[str, Any] | None = None,
    ) -> DagRunResult:
        api_key = chatmaid_sandbox.live_key if key == "live" else chatmaid_sandbox.test_key
        defined: dict[str, dict[str, Any] | str] = {
            "chatmaid_default": connection or chatmaid_connection(chatmaid_sandbox.url, api_key),
            "chatmaid_live": chatmaid_connection(chatmaid_sandbox.url, chatmaid_sandbox.live_key),
            **(connections or {}),
        }
        return dag_home.run(dag_file, connections=defined, conf=conf)

    return run


@pytest.fixture
def sent_messages(chatmaid_sandbox: SandboxHandle) -> Messages:
    """The messages sent since the sandbox was reset (the seed message left out)."""
    seed_ids = {message["id"] for message in chatmaid_sandbox.admin.messages()}

    def messages() -> list[dict[str, Any]]:
        return [m for m in chatmaid_sandbox.admin.messages() if m["id"] not in seed_ids]

    return messages


@pytest.fixture
def use_connection(
    chatmaid_sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., None]:
    """Point ``chatmaid_default`` of this process at the sandbox (in-process tests)."""

    def use(api_key: str | None = None, **extra: Any) -> None:
        connection = chatmaid_connection(
            chatmaid_sandbox.url, api_key or chatmaid_sandbox.test_key, **extra
        )
        monkeypatch.setenv("AIRFLOW_CONN_CHATMAID_DEFAULT", json.dumps(connection))

    return use


POLL = "GET /v1/messages/{messageId}"


@pytest.fixture
def settle_once_polled(chatmaid_sandbox: SandboxHandle) -> Iterator[None]:
    """Live messages stay ``pending`` until a status poll has seen them pending, then are
    sent: every wait meets its message pending, however slow the machine. For DAGs that
    keep at most one live message pending at a time."""
    admin = chatmaid_sandbox.admin
    admin.update_settings(live_delay=3600)
    stop = threading.Event()

    def polls() -> int:
        return int(admin.requests()["byEndpoint"].get(POLL, {}).get("200", 0))

    def settle() -> None:
        seen: dict[str, int] = {}  # pending message id -> polls when first seen
        while not stop.wait(0.05):
            for message in admin.messages():
                if message["environment"] != "live" or message["status"] != "pending":
                    continue
                first = seen.setdefault(message["id"], polls())
                if polls() > first:
                    admin.advance_message(message["id"])

    worker = threading.Thread(target=settle, daemon=True)
    worker.start()
    yield
    stop.set()
    worker.join()
