"""Helpers for the bridge's integration tests: topics, records, bridge processes, brokers.

Tests need a Kafka broker at ``KAFKA_BOOTSTRAP`` (default 127.0.0.1:9092, started by
``scripts/kafka.sh up``) and skip with that hint when none listens. Every test uses its
own topics and consumer group, so tests run in any order. Disruptive tests (stopping
the broker) get a private broker of their own via ``PrivateBroker``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka.producer import KafkaProducer

from chatmaid_kafka.testing import Record, TopicSet, free_port, listening

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REPO = Path(__file__).resolve().parents[2]
SHARED_LIBS = REPO / ".kafka" / "libs"
WEBHOOK_SECRET = "whsec_bridge_integration"


Topics = TopicSet  # one test's topics and consumer group


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def kafka_bootstrap() -> str:
    """The shared dev broker, or a skip saying how to start one."""
    if not listening(BOOTSTRAP):
        pytest.skip(f"no Kafka broker at {BOOTSTRAP} (start one with: scripts/kafka.sh up)")
    return BOOTSTRAP


@pytest.fixture
def topics(kafka_bootstrap: str) -> Iterator[Topics]:
    """Fresh topics and group for one test, deleted afterwards."""
    made = Topics(kafka_bootstrap)
    made.create()
    yield made
    made.delete()


def notify_event(suffix: str, index: int, **fields: Any) -> dict[str, Any]:
    """A valid notify event with a unique eventId and recipient (one the sandbox
    delivers: it fails numbers ending in 0000 and 0001)."""
    return {
        "eventId": f"ev-{suffix}-{index}",
        "to": f"+1555{7_012_345 + index:07d}",
        "content": f"notification {index}",
        "metadata": {"index": index},
        **fields,
    }


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    headers: list[tuple[str, bytes]] | None = None,
) -> int:
    """Produce (key, value) records with acks=all, in order; return how many."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    count = 0
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, headers=headers or [])
            count += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
    return count


def produce_events(
    bootstrap: str, topic: str, events: Sequence[dict[str, Any]], keys: int = 16
) -> None:
    """Produce notify events as JSON, spread over ``keys`` keys."""
    produce(
        bootstrap,
        topic,
        ((f"key-{i % keys}".encode(), json.dumps(e).encode()) for i, e in enumerate(events)),
    )


def results_by_event(records: Iterable[Record]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Result records grouped eventId -> type -> records."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for record in records:
        result = json.loads(record.value)
        by_type = grouped.setdefault(result.get("eventId") or "<none>", {})
        by_type.setdefault(result["type"], []).append(result)
    return grouped


def outcomes_complete(records: list[Record], event_ids: Iterable[str]) -> bool:
    """Every event has its accepted record and a final (sent or failed) one."""
    grouped = results_by_event(records)
    return all(
        "message.accepted" in grouped.get(e, {})
        and ("message.sent" in grouped[e] or "message.failed" in grouped[e])
        for e in event_ids
    )


def bridge_messages(admin: Any) -> list[dict[str, Any]]:
    """The sandbox's messages sent by the bridge for ``notify_event`` events."""
    return [
        m
        for m in admin.messages()
        if (m.get("content") or "").startswith("notification ")
        and (m.get("idempotencyKey") or "").startswith("kafka-")
    ]


class BridgeProcess:
    """``python -m chatmaid_kafka.cli <command>`` as a subprocess, logging to a file."""

    def __init__(
        self,
        command: str,
        args: Sequence[str],
        *,
        sandbox: Any,
        log_dir: Path,
        port: int | None = None,
        name: str = "bridge",
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        api = [] if command == "receive" else ["--base-url", sandbox.url]
        self.command = [
            sys.executable,
            "-m",
            "chatmaid_kafka.cli",
            command,
            *api,
            "--port",
            str(self.port),
            "--log-format",
            "text",
            *args,
        ]
        self.env = {
            **os.environ,
            "CHATMAID_API_KEY": sandbox.test_key,
            "CHATMAID_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> BridgeProcess:
        """Start and wait until ``/healthz`` answers 200."""
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"--- start {self.starts} ---\n".encode())
        log.flush()
        self.process = subprocess.Popen(  # noqa: S603
            self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"bridge exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"bridge not healthy after {timeout:g}s:\n{self.log()}")
            time.sleep(0.1)

    def start_expecting_exit(self, code: int, timeout: float = 60.0) -> None:
        """Start, and expect the process to exit with ``code`` on its own."""
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        assert self.wait(timeout) == code, self.log()

    def wait(self, timeout: float) -> int:
        """The exit code, once the process exits by itself within ``timeout``."""
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no drain, no commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def metric(self, name: str) -> float:
        """A metric's value summed over its labels (0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                if head == name or head.startswith(name + "{"):
                    total += float(value)
        return total

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def bridges(tmp_path: Path) -> Iterator[list[BridgeProcess]]:
    """Bridge processes a test starts; whatever still runs is killed afterwards."""
    started: list[BridgeProcess] = []
    yield started
    for bridge in started:
        bridge.kill()


def start_receiver(
    bridges: list[BridgeProcess], sandbox: Any, topics: Topics, log_dir: Path, *flags: str
) -> BridgeProcess:
    """A ``receive`` process on ``topics`` with ``flags``, started (killed after the test)."""
    receiver = BridgeProcess(
        "receive", [*topics.flags("receive"), *flags], sandbox=sandbox, log_dir=log_dir
    )
    bridges.append(receiver)
    return receiver.start()


class PrivateBroker:
    """A broker of one's own (``scripts/kafka.sh`` in a temporary state dir), to stop at will."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "libs").exists():
            # Reuse the jars the dev broker fetched (same pom, same marker): no Maven run.
            (home / "libs").symlink_to(SHARED_LIBS, target_is_directory=True)
        self.env = {
            **os.environ,
            "KAFKA_HOME_DIR": str(home),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_PYTHON": sys.executable,
        }

    def _script(self, action: str) -> None:
        subprocess.run(  # noqa: S603
            ["bash", str(REPO / "scripts" / "kafka.sh"), action],  # noqa: S607
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def up(self) -> None:
        self._script("up")

    def down(self) -> None:
        self._script("down")


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """A broker only this module's tests use (they stop and start it)."""
    if not (SHARED_LIBS / ".complete").is_file():
        pytest.skip("no Kafka jars in .kafka/libs (run scripts/kafka.sh up once)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("java is needed to run a private Kafka broker")
    broker = PrivateBroker(tmp_path_factory.mktemp("kafka-private"))
    broker.up()
    yield broker
    broker.down()


@pytest.fixture
def private_topics(private_broker: PrivateBroker) -> Iterator[Topics]:
    """Fresh topics on the private broker (which is up when a test starts)."""
    private_broker.up()
    made = Topics(private_broker.bootstrap)
    made.create()
    yield made
    private_broker.up()
    made.delete()
