"""What the Kafka bridge benchmarks share: the broker, topics, events, bridge processes.

The broker is the development one (``scripts/kafka.sh``, 127.0.0.1:9092): ``broker()``
starts it only if it is not running, and then stops it again at the end; a broker
someone else started is left alone. Every run uses topics and a consumer group of its
own (``TopicSet``), deleted afterwards. A bridge runs as ``python -m
chatmaid_kafka.cli <command>`` in a subprocess (``BridgeProcess``) with JSON logs in a
temporary file, which give the moment the consumer got its partitions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from kafka.admin import KafkaAdminClient
from kafka.errors import CoordinatorNotAvailableError
from kafka.producer import KafkaProducer

from chatmaid_kafka.testing import Record, TopicReader, TopicSet, free_port, listening
from chatmaid_kafka.topics import CORRELATION_CONFIG

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
WEBHOOK_SECRET = "whsec_bridge_benchmark"
#: Topic config that stamps each record with the broker's clock when it is appended.
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


class BenchError(RuntimeError):
    """The benchmark could not run (not a correctness failure of what it measures)."""


# -- the broker -------------------------------------------------------------------------


def _kafka_script(action: str) -> int:
    script = REPO / "scripts" / "kafka.sh"
    env = {**os.environ, "KAFKA_PYTHON": sys.executable}
    done = subprocess.run(  # noqa: S603
        ["bash", str(script), action],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done.returncode


@contextmanager
def broker() -> Iterator[str]:
    """The bootstrap address of a running broker; started (and later stopped) if needed."""
    started = False
    if BOOTSTRAP == "127.0.0.1:9092" and _kafka_script("status") != 0:
        print("starting the Kafka broker (scripts/kafka.sh up) ...", flush=True)
        if _kafka_script("up") != 0:
            raise BenchError("scripts/kafka.sh up failed (see .kafka/logs)")
        started = True
    if not listening(BOOTSTRAP):
        raise BenchError(f"no Kafka broker at {BOOTSTRAP}")
    try:
        yield BOOTSTRAP
    finally:
        if started:
            _kafka_script("down")


# -- topics and records -----------------------------------------------------------------


@contextmanager
def fresh_topics(bootstrap: str, label: str, partitions: int = 4) -> Iterator[TopicSet]:
    """Topics created for one run and deleted after it; the results topic stamps records
    with their append time."""
    topics = TopicSet(bootstrap, prefix=f"bench-{label}", partitions=partitions)
    topics.create({topics.results: LOG_APPEND_TIME, topics.correlation: CORRELATION_CONFIG})
    try:
        yield topics
    finally:
        with suppress(Exception):
            topics.delete()


def notify_event(run: str, index: int) -> dict[str, Any]:
    """A valid notify event: unique eventId, recipient and content marker."""
    return {
        "eventId": f"ev-{run}-{index}",
        "to": f"+1555{7_012_345 + index:07d}",
        "content": f"bench {run} {index}",
        "metadata": {"index": index},
    }


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    partitions: int | None = None,
) -> int:
    """Produce (key, value) records with acks=all; with ``partitions``, round-robin
    explicitly (record i to partition i % partitions). Return how many."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024
    )
    count = 0
    try:
        for key, value in records:
            partition = None if partitions is None else count % partitions
            producer.send(topic, key=key, value=value, partition=partition)
            count += 1
        producer.flush(timeout=60)
    finally:
        producer.close()
    return count


def produce_events(bootstrap: str, topic: str, events: Sequence[dict[str, Any]]) -> None:
    """Notify events as JSON, each under its own key (so none wait for another's send)."""
    produce(bootstrap, topic, ((e["eventId"].encode(), json.dumps(e).encode()) for e in events))


def reached(reader: TopicReader, predicate: Callable[[list[Record]], bool], timeout: float) -> bool:
    """Whether ``reader`` sees ``predicate`` hold within ``timeout`` seconds."""
    try:
        reader.wait_for(predicate, timeout)
    except TimeoutError:
        return False
    return True


def committed_all(
    bootstrap: str,
    group: str,
    events: int,
    timeout: float,
    *,
    tick: Callable[[], object] | None = None,
) -> bool:
    """Whether ``group`` commits past all ``events`` of its fresh topic within ``timeout``.

    Two small admin requests a second: the harness waits for the bridge without reading
    its results meanwhile, which would take CPU from what is measured (read them after;
    the figures come from the brokers' append times). ``tick`` is called four times a
    second meanwhile (``_cpu.sample``, say). A fresh broker has no group coordinator
    until the first commit creates its offsets topic: asked again then."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-progress")
    deadline = time.monotonic() + timeout
    try:
        polls = 0
        while time.monotonic() < deadline:
            if tick is not None:
                tick()
            if polls % 2 == 0 and committed(admin, group) >= events:
                return True
            polls += 1
            time.sleep(0.25)
        return False
    finally:
        admin.close()


def committed(admin: KafkaAdminClient, group: str) -> int:
    """Offsets ``group`` committed, summed over its partitions (0 before any commit)."""
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    except CoordinatorNotAvailableError:
        return 0
    return sum(max(0, meta.offset) for meta in offsets.values())


def values(records: Iterable[Record]) -> list[dict[str, Any]]:
    """The JSON values of records."""
    return [json.loads(record.value) for record in records]


def duplicates_and_missing(seen: Iterable[str], expected: Iterable[str]) -> tuple[int, int]:
    """(how many expected items appear more than once, how many never)."""
    counts: dict[str, int] = {}
    for item in seen:
        counts[item] = counts.get(item, 0) + 1
    wanted = list(expected)
    return sum(counts.get(e, 0) > 1 for e in wanted), sum(counts.get(e, 0) == 0 for e in wanted)


# -- bridge processes -------------------------------------------------------------------


class BridgeProcess:
    """``python -m chatmaid_kafka.cli <command>`` in a subprocess, JSON logs to a file."""

    def __init__(
        self,
        command: str,
        args: Sequence[str],
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        webhook_secret: str | None = None,
        python: Sequence[str] = (sys.executable,),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        api = [] if base_url is None else ["--base-url", base_url]
        self.command = [
            *python,
            "-m",
            "chatmaid_kafka.cli",
            command,
            *api,
            "--port",
            str(self.port),
            "--log-format",
            "json",
            *args,
        ]
        self.env = dict(os.environ)
        if api_key is not None:
            self.env["CHATMAID_API_KEY"] = api_key
        if webhook_secret is not None:
            self.env["CHATMAID_WEBHOOK_SECRET"] = webhook_secret
        handle, name = tempfile.mkstemp(prefix=f"bench-bridge-{command}-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> BridgeProcess:
        """Start and wait until ``/healthz`` answers 200."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"bridge exited with {self.process.returncode}:\n{self.log()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.kill()
                raise BenchError(f"bridge not healthy after {timeout:g}s:\n{self.log()}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        """The started process's ID (the supervisor's with ``--processes``)."""
        assert self.process is not None, "start() first"
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_entries(self) -> list[dict[str, Any]]:
        """The JSON log lines (other lines skipped)."""
        entries = []
        for line in self.log().splitlines():
            with suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def logged_at(self, prefix: str) -> float | None:
        """Unix time of the first log line whose message starts with ``prefix``."""
        moments = self.logged_times(prefix)
        return moments[0] if moments else None

    def logged_times(self, prefix: str) -> list[float]:
        """Unix times, in order, of the log lines whose message starts with ``prefix``."""
        return sorted(
            datetime.fromisoformat(str(entry["ts"])).timestamp()
            for entry in self.log_entries()
            if str(entry.get("message", "")).startswith(prefix) and "ts" in entry
        )

    def settled_at(self, members: int = 1) -> float | None:
        """When ``members`` processes all had partitions: the ``members``-th assignment
        logged (a supervisor's workers log to one file, a line each)."""
        moments = self.logged_times("assigned")
        return moments[members - 1] if len(moments) >= members else None

    def wait_settled(self, members: int, timeout: float) -> None:
        """Return once ``members`` processes all have partitions (at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while self.settled_at(members) is None:
            if time.monotonic() > deadline:
                raise BenchError(f"{members} processes had no partitions after {timeout:g}s")
            time.sleep(0.1)

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

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (drain, commit, exit) and wait; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def cleanup(self) -> None:
        """Kill if still running; remove the log file."""
        self.kill()
        with suppress(OSError):
            self.log_path.unlink()

    def __enter__(self) -> BridgeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmHWM for pid {pid}")


def run_id() -> str:
    """A short ID unique to one run (event IDs, markers)."""
    return uuid.uuid4().hex[:8]
