"""Airflow waits: 200 ``ChatmaidMessageTrigger``s on one event loop, and a deferrable send.

One sandbox in its own process serves every phase; its live messages stay ``pending``
for ``--settle`` seconds (30), and it limits each key to ``--rate-limit`` requests a
minute (6000: the Chatmaid API's default of 100 would throttle 200 waiters). Each wait
phase runs in a fresh process of this script, so neither inherits the other's heap; it
warms up on one settled message, sends its own 200 live messages, then waits on them.

1. **API calls per waited message.** 200 ``ChatmaidMessageTrigger``s run as tasks of
   one asyncio event loop, each driven the way Airflow's ``TriggerRunner.run_trigger``
   drives a trigger (``airflow/jobs/triggerer_job_runner.py``: ``async for event in
   trigger.run()``, each event queued). They read ``chatmaid_default`` from
   ``AIRFLOW_CONN_CHATMAID_DEFAULT`` and share the loop's ``AsyncChatmaidClient``. The
   sandbox counts the ``GET /v1/messages/{id}`` it answers; httpx's transport is wrapped
   to time each poll as it goes out. The baseline is the number of polls the schedule
   (first poll at once, then 2 s x 1.5^n, at most 30 s apart) implies for each message
   from its first poll to its ``sentAt``. Bar: a ratio of at most 1.1; a 429 anywhere
   in the run is a correctness failure.
2. **Peak memory per waiting trigger**: tracemalloc's peak during the wait minus the
   start of the phase, over 200; RSS (sampled, and VmHWM) as a cross-check, and the
   live memory of an idle waiter (after a ``gc.collect()``) as a second view. The
   baseline is the smallest waiter a user could write: 200 asyncio tasks polling
   ``GET /v1/messages/{id}`` through one shared ``httpx.AsyncClient`` on the same
   schedule, measured the same way in its own phase. The issue sets no bar: the 3.0
   printed is a placeholder.
3. **No worker slot held while waiting.** ``dag.test()`` (``DagTestHome``: a throwaway
   Airflow home, one subprocess) runs ``ChatmaidSendMessageOperator(...,
   wait_for_delivery=True)`` twice on the live key with ``--dag-settle`` seconds (8) of
   settling: deferrable, and, to check the instrument, not deferrable. A side thread
   reads ``task_instance.state`` from the run's SQLite database every 0.1 s; the figure
   is how long the deferrable task was not ``running`` while its message was pending.
   ``dag.test()`` runs the trigger inline and shows the task ``queued``, not
   ``deferred``, meanwhile; the output says what that does and does not prove.

Exits non-zero only when a correctness check fails (a waiter not ending ``sent``, a
429, timed polls disagreeing with the sandbox's count, a failed run, no deferral
recorded, a state poller that cannot see ``running``), never because of a figure.
Takes about 2 minutes (two waits of about 45 s, one DAG run).

    .venv/bin/python benchmarks/bench_airflow_waits.py [--waiters 200] [--settle 30]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from array import array
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

from chatmaid import ChatmaidClient, MessageStatus
from chatmaid.sandbox import SEED, SandboxHandle, start_sandbox_process

from _report import emit, fail

POLL_INTERVAL = 2.0
MAX_POLL_INTERVAL = 30.0
BACKOFF = 1.5
WAIT_LIMIT = 120.0  # seconds a waiter may take before it counts as stuck
POLL_ENDPOINT = "GET /v1/messages/{messageId}"
PHASE_MARK = "BENCH_AIRFLOW_WAITS_PHASE "
TRIGGER_CLASSPATH = "chatmaid_airflow.triggers.chatmaid.ChatmaidMessageTrigger"
CALLS_TARGET = 1.1
MEMORY_TARGET = 3.0  # a placeholder: the issue asks for the figure, not a bar
DEFERRED_TARGET = 0.9
STATE_PERIOD = 0.1
DAG_ID = "bench_airflow_waits"
DAG_SOURCE = '''\
"""Written by benchmarks/bench_airflow_waits.py: one send-and-wait deferred, one not."""

from datetime import datetime, timedelta

from airflow.sdk import DAG

from chatmaid_airflow.operators.chatmaid import ChatmaidSendMessageOperator

with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    ChatmaidSendMessageOperator(
        task_id="deferrable_wait",
        to="+15557654321",
        content="deferrable send-and-wait",
        wait_for_delivery=True,
        deferrable=True,
        delivery_timeout=timedelta(minutes=2),
    )
    ChatmaidSendMessageOperator(
        task_id="blocking_wait",
        to="+15557654322",
        content="blocking send-and-wait",
        wait_for_delivery=True,
        deferrable=False,
        delivery_timeout=timedelta(minutes=2),
    )
'''


# -- the poll schedule ------------------------------------------------------------------


def poll_offsets(until: float) -> list[float]:
    """Seconds after the first poll of every poll up to the first one at or after ``until``."""
    offsets, interval = [0.0], POLL_INTERVAL
    while offsets[-1] < until:
        offsets.append(offsets[-1] + interval)
        interval = min(interval * BACKOFF, MAX_POLL_INTERVAL)
    return offsets


def implied_polls(settle_offset: float) -> int:
    """Polls the schedule makes when the message settles ``settle_offset`` s after the first."""
    return len(poll_offsets(settle_offset))


def margin(settle_offset: float) -> float:
    """Seconds between a settle time and the nearest poll of the schedule."""
    return min(abs(settle_offset - o) for o in poll_offsets(settle_offset + MAX_POLL_INTERVAL))


def quiet_offset(settle: float) -> float:
    """Midway through the longest sleep before the settle: every waiter idle."""
    offsets = poll_offsets(settle)[:-1] or [0.0]
    if len(offsets) < 2:
        return offsets[0]
    gaps = list(itertools.pairwise(offsets))
    low, high = max(gaps, key=lambda gap: gap[1] - gap[0])
    return (low + high) / 2


def timestamp(value: str) -> float:
    """An API timestamp (``2026-02-06T14:22:30.000Z``) as Unix seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# -- when each poll was sent ------------------------------------------------------------


class PollClock:
    """The wall-clock start of every ``GET /v1/messages/{id}`` this process sends.

    ``recording()`` wraps httpx's async transport (which the core client and the bare
    waiters both use), so a poll is timed as it goes out, after any client-side rate
    limiting. Storage is preallocated: recording adds nothing to the traced memory.
    """

    SLOTS = 32  # polls per message at most (7 are expected)

    def __init__(self, ids: list[str]) -> None:
        self.index = {f"/v1/messages/{message_id}": n for n, message_id in enumerate(ids)}
        self.ids = ids
        self.times = array("d", bytes(8 * len(ids) * self.SLOTS))
        self.counts = array("q", bytes(8 * len(ids)))
        self.unknown = 0  # polls of ids outside the phase, and polls past SLOTS
        self.in_flight = 0

    def record(self, path: str) -> None:
        n = self.index.get(path)
        if n is None or self.counts[n] >= self.SLOTS:
            self.unknown += 1
            return
        self.times[n * self.SLOTS + self.counts[n]] = time.time()
        self.counts[n] += 1

    def polls(self, message_id: str) -> list[float]:
        n = self.ids.index(message_id)
        return list(self.times[n * self.SLOTS : n * self.SLOTS + self.counts[n]])

    @contextmanager
    def recording(self) -> Iterator[None]:
        original = httpx.AsyncHTTPTransport.handle_async_request
        clock = self

        async def timed(
            transport: httpx.AsyncHTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            if request.method == "GET":
                clock.record(request.url.path)
            clock.in_flight += 1
            try:
                return await original(transport, request)
            finally:
                clock.in_flight -= 1

        with mock.patch.object(httpx.AsyncHTTPTransport, "handle_async_request", timed):
            yield


# -- memory -----------------------------------------------------------------------------


def proc_status_kib(field_name: str) -> int:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in KiB; 0 where unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


@dataclass
class Memory:
    """Memory over one wait phase, in bytes above the phase's start."""

    peak: int = 0  # tracemalloc peak
    live: int | None = None  # tracemalloc at the quiet point, after a gc.collect()
    in_flight_at_quiet: int | None = None  # polls unanswered at that moment (should be 0)
    rss_peak: int = 0  # highest VmRSS sampled every 50 ms
    hwm_peak: int | None = None  # VmHWM (reset at the start), when the kernel allows it


class MemoryProbe:
    """tracemalloc from the start of a phase, plus RSS samples, until ``finish``."""

    def __init__(self, quiet_after: float, clock: PollClock) -> None:
        self._quiet_after = quiet_after
        self._clock = clock
        self.memory = Memory()
        self._start = 0.0
        self._traced_before = 0
        self._rss_before = 0
        self._hwm_reset = False

    def start(self) -> None:
        gc.collect()
        self._hwm_reset = reset_peak_rss()
        self._rss_before = proc_status_kib("VmRSS")
        tracemalloc.start()
        self._traced_before = tracemalloc.get_traced_memory()[0]
        self._start = time.monotonic()

    async def sample(self) -> None:
        """Sample RSS every 50 ms, and tracemalloc once at the quiet point; until cancelled."""
        quiet_at = self._start + self._quiet_after
        while True:
            rss = (proc_status_kib("VmRSS") - self._rss_before) * 1024
            self.memory.rss_peak = max(self.memory.rss_peak, rss)
            if self.memory.live is None and time.monotonic() >= quiet_at:
                self.memory.in_flight_at_quiet = self._clock.in_flight
                gc.collect()  # cyclic garbage of earlier polls (httpx objects) goes
                self.memory.live = tracemalloc.get_traced_memory()[0] - self._traced_before
            await asyncio.sleep(0.05)

    def finish(self) -> Memory:
        self.memory.peak = tracemalloc.get_traced_memory()[1] - self._traced_before
        tracemalloc.stop()
        if self._hwm_reset:
            self.memory.hwm_peak = (proc_status_kib("VmHWM") - self._rss_before) * 1024
        return self.memory


# -- the wait phases (each in a fresh process of this script) ----------------------------


def send_live(url: str, count: int, first_number: int) -> list[str]:
    """Send ``count`` live messages (each its own recipient); their ids."""
    with ChatmaidClient(SEED.live_key, base_url=url, requests_per_minute=None) as client:
        return [
            client.send_message(
                from_phone=SEED.phone_id,
                to=f"+1555765{first_number + n:04d}",
                content="benchmark: waited on",
            ).id
            for n in range(count)
        ]


async def run_triggers(ids: list[str], probe: MemoryProbe) -> dict[str, str]:
    """Every message's trigger as a task of this loop, driven like ``run_trigger``."""
    from chatmaid_airflow.triggers.chatmaid import ChatmaidMessageTrigger

    probe.start()
    sampler = asyncio.create_task(probe.sample())
    end_time = time.time() + WAIT_LIMIT
    triggers = [
        ChatmaidMessageTrigger(
            message_id,
            end_time=end_time,
            poll_interval=POLL_INTERVAL,
            max_poll_interval=MAX_POLL_INTERVAL,
            backoff=BACKOFF,
        )
        for message_id in ids
    ]
    events: deque[tuple[str, dict[str, Any]]] = deque()  # TriggerRunner.events

    async def run_trigger(trigger: ChatmaidMessageTrigger) -> None:
        async for event in trigger.run():
            events.append((trigger.message_id, event.payload))

    tasks = [
        asyncio.create_task(run_trigger(trigger), name=f"ID {n}")
        for n, trigger in enumerate(triggers)
    ]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=WAIT_LIMIT + 10)
    probe.finish()
    sampler.cancel()
    outcomes: dict[str, str] = {}
    for message_id, payload in events:
        if payload.get("status") == "done":
            outcomes[message_id] = str(payload["message"]["status"])
        else:
            outcomes[message_id] = f"{payload.get('status')}: {payload.get('error')}"
    return outcomes


async def run_bare(ids: list[str], probe: MemoryProbe, url: str) -> dict[str, str]:
    """The minimal waiter: one shared ``httpx.AsyncClient``, the same schedule."""
    probe.start()
    sampler = asyncio.create_task(probe.sample())
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {SEED.live_key}"})
    outcomes: dict[str, str] = {}

    async def wait(message_id: str) -> None:
        interval = POLL_INTERVAL
        while True:
            response = await http.get(f"{url}/v1/messages/{message_id}")
            response.raise_for_status()
            status = str(response.json()["data"]["status"])
            if status in MessageStatus.TERMINAL:
                outcomes[message_id] = status
                return
            await asyncio.sleep(interval)
            interval = min(interval * BACKOFF, MAX_POLL_INTERVAL)

    tasks = [asyncio.create_task(wait(message_id)) for message_id in ids]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=WAIT_LIMIT + 10)
    probe.finish()
    sampler.cancel()
    await http.aclose()
    return outcomes


async def warm_up(kind: str, url: str, message_id: str) -> None:
    """One wait on a settled message: imports, connection lookup, first client, pools."""
    if kind == "triggers":
        from chatmaid_airflow.triggers.chatmaid import ChatmaidMessageTrigger

        async for event in ChatmaidMessageTrigger(message_id, time.time() + 30).run():
            assert event.payload["status"] == "done", event.payload
        return
    headers = {"Authorization": f"Bearer {SEED.live_key}"}
    async with httpx.AsyncClient(headers=headers) as http:
        (await http.get(f"{url}/v1/messages/{message_id}")).raise_for_status()


def phase_process(args: argparse.Namespace) -> int:
    """In a fresh process: warm up, send this phase's messages, wait on them all, and
    print what happened as one marked JSON line."""
    kind, url = args.phase, args.url
    if kind == "triggers":
        # chatmaid_default from the environment, in an Airflow home of this process's own
        # (an environment connection needs no database).
        connection = {
            "conn_type": "chatmaid",
            "host": url,
            "password": SEED.live_key,
            "extra": {"requests_per_minute": args.rate_limit},
        }
        os.environ.update(
            {
                "AIRFLOW_HOME": args.airflow_home,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # 200 "Chatmaid message ... is sent" lines otherwise; the call stays.
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                "AIRFLOW_CONN_CHATMAID_DEFAULT": json.dumps(connection),
            }
        )
    warm = PollClock([])
    with warm.recording():
        asyncio.run(warm_up(kind, url, args.warm_id))
    ids = send_live(url, args.waiters, 1000 if kind == "triggers" else 3000)
    clock = PollClock(ids)
    probe = MemoryProbe(quiet_offset(args.settle), clock)
    started = time.monotonic()
    with clock.recording():
        if kind == "triggers":
            outcomes = asyncio.run(run_triggers(ids, probe))
        else:
            outcomes = asyncio.run(run_bare(ids, probe, url))
    result = {
        "ids": ids,
        "outcomes": outcomes,
        "poll_times": {message_id: clock.polls(message_id) for message_id in ids},
        "unmatched": clock.unknown + warm.unknown,
        "memory": dataclasses.asdict(probe.memory),
        "seconds": time.monotonic() - started,
    }
    print(PHASE_MARK + json.dumps(result), flush=True)
    return 0


@dataclass
class Phase:
    """One phase of waiters: what they saw, when they polled, what the sandbox answered."""

    name: str
    ids: list[str]
    outcomes: dict[str, str]
    poll_times: dict[str, list[float]]  # when each poll went out, per message
    unmatched: int  # polls of no message of the phase (the warm-up's)
    memory: Memory
    seconds: float
    polls: int = 0  # GET /v1/messages/{id} the sandbox answered meanwhile
    rate_limited: int = 0
    settled: dict[str, float] = field(default_factory=dict)  # sandbox sentAt per id

    @property
    def calls(self) -> int:
        """Polls of the phase's messages the sandbox answered (the warm-up's left out)."""
        return self.polls - self.unmatched

    def complete(self) -> bool:
        """Every message settled in the sandbox and polled at least once."""
        return all(i in self.settled and self.poll_times.get(i) for i in self.ids)

    def settle_offsets(self) -> list[float]:
        """Seconds from each message's first poll to its settling."""
        return [self.settled[i] - self.poll_times[i][0] for i in self.ids]

    def implied(self) -> list[int]:
        """Polls the schedule implies per message (nothing added for answer times)."""
        return [implied_polls(offset) for offset in self.settle_offsets()]

    def margins(self) -> list[float]:
        return [margin(offset) for offset in self.settle_offsets()]

    def polls_after_settle(self) -> list[int]:
        """Per message, the polls sent at or after it settled: 1 is the schedule's."""
        return [sum(t >= self.settled[i] for t in self.poll_times[i]) for i in self.ids]

    def gaps(self) -> tuple[int, float, float]:
        """Gaps between polls shorter than the schedule's interval (less 1 ms), and the
        mean and largest lateness of a poll against its interval, in seconds."""
        early, late = 0, []
        for message_id in self.ids:
            interval = POLL_INTERVAL
            for before, after in itertools.pairwise(self.poll_times[message_id]):
                early += after - before < interval - 0.001
                late.append(after - before - interval)
                interval = min(interval * BACKOFF, MAX_POLL_INTERVAL)
        return early, sum(late) / max(len(late), 1), max(late, default=0.0)


def request_counts(sandbox: SandboxHandle) -> tuple[int, int]:
    """``GET /v1/messages/{id}`` answered so far, and 429s answered so far."""
    counts = sandbox.admin.requests()
    polls = sum(counts["byEndpoint"].get(POLL_ENDPOINT, {}).values())
    return polls, int(counts["byStatus"].get("429", 0))


def run_phase(
    sandbox: SandboxHandle,
    kind: str,
    warm_id: str,
    root: Path,
    args: argparse.Namespace,
    problems: list[str],
) -> Phase | None:
    """Run one phase in a fresh process; add what the sandbox saw meanwhile."""
    polls_before, limited_before = request_counts(sandbox)
    command = [sys.executable, os.path.abspath(__file__), "--phase", kind, "--url", sandbox.url]
    command += ["--warm-id", warm_id, "--waiters", str(args.waiters)]
    command += ["--settle", str(args.settle), "--rate-limit", str(args.rate_limit)]
    command += ["--airflow-home", str(root / f"{kind}-airflow-home")]
    process = subprocess.run(  # noqa: S603
        command, stdout=subprocess.PIPE, text=True, timeout=WAIT_LIMIT + 120, check=False
    )
    marked = [line for line in process.stdout.splitlines() if line.startswith(PHASE_MARK)]
    if process.returncode != 0 or not marked:
        problems.append(f"{kind}: the phase's process exited {process.returncode}")
        return None
    result = json.loads(marked[-1][len(PHASE_MARK) :])
    phase = Phase(
        name=kind,
        ids=result["ids"],
        outcomes=result["outcomes"],
        poll_times=result["poll_times"],
        unmatched=result["unmatched"],
        memory=Memory(**result["memory"]),
        seconds=result["seconds"],
    )
    polls_after, limited_after = request_counts(sandbox)
    phase.polls = polls_after - polls_before
    phase.rate_limited = limited_after - limited_before
    wanted = set(phase.ids)
    for message in sandbox.admin.messages():
        if message["id"] in wanted and message.get("sentAt"):
            phase.settled[message["id"]] = timestamp(message["sentAt"])
    check_phase(phase, problems)
    return phase


def check_phase(phase: Phase, problems: list[str]) -> None:
    wrong = {i: phase.outcomes.get(i) for i in phase.ids if phase.outcomes.get(i) != "sent"}
    if wrong:
        sample = dict(list(wrong.items())[:3])
        problems.append(f"{phase.name}: {len(wrong)} waiters did not end 'sent', e.g. {sample}")
    missing = [i for i in phase.ids if i not in phase.settled]
    if missing:
        problems.append(f"{phase.name}: the sandbox has no sentAt for {len(missing)} messages")
    if phase.rate_limited:
        problems.append(f"{phase.name}: the sandbox answered {phase.rate_limited} 429s")
    timed = sum(len(times) for times in phase.poll_times.values())
    unpolled = [i for i in phase.ids if not phase.poll_times.get(i)]
    if timed + phase.unmatched != phase.polls or unpolled:
        problems.append(
            f"{phase.name}: polls timed in the phase ({timed}, {phase.unmatched} unmatched, "
            f"{len(unpolled)} messages never polled) disagree with the sandbox's {phase.polls}"
        )


# -- dag.test(): is a worker slot held while waiting? -----------------------------------


class StatePoller(threading.Thread):
    """Reads every task instance's state of one DAG from an Airflow SQLite database."""

    def __init__(self, database: Path, dag_id: str, period: float) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, dict[str, str | None]]] = []
        self.errors = 0
        self._uri = f"file:{database}?mode=ro"
        self._dag_id = dag_id
        self._period = period
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                with sqlite3.connect(self._uri, uri=True, timeout=1.0) as db:
                    rows = db.execute(
                        "SELECT task_id, state FROM task_instance WHERE dag_id = ?",
                        (self._dag_id,),
                    ).fetchall()
                self.samples.append((time.time(), dict(rows)))
            except sqlite3.Error:
                self.errors += 1
            self._halt.wait(self._period)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class StateShare:
    """How one task spent a window: seconds not ``running``, seconds observed, states."""

    not_running: float
    observed: float
    states: list[str | None]


def share_not_running(
    samples: list[tuple[float, dict[str, str | None]]], task_id: str, start: float, end: float
) -> StateShare:
    """Clip the sampled timeline to the window; a stretch between two samples counts as
    not ``running`` only if both samples say so (a transition costs up to one period)."""
    not_running = observed = 0.0
    states: list[str | None] = []
    for (at, seen), (after, next_seen) in itertools.pairwise(samples):
        if start <= at <= end and seen.get(task_id) not in states:
            states.append(seen.get(task_id))
        low, high = max(at, start), min(after, end)
        if high <= low:
            continue
        observed += high - low
        if "running" not in (seen.get(task_id), next_seen.get(task_id)):
            not_running += high - low
    return StateShare(not_running, observed, states)


def log_time(output: str, pattern: str) -> float | None:
    """The timestamp of the first log line matching ``pattern`` (Airflow's console format)."""
    for line in output.splitlines():
        if re.search(pattern, line):
            found = re.match(r"(\d{4}-\d\d-\d\dT[\d:.]+Z)", line)
            if found:
                return timestamp(found.group(1))
    return None


@dataclass
class DagWait:
    """What the ``dag.test()`` run showed."""

    seconds: float
    window: float  # the deferrable message's pending time (createdAt -> sentAt)
    deferred: StateShare
    blocking: StateShare
    blocking_window: float
    trigger_classpath: str | None
    defer_after_send: float | None  # send acknowledged -> "Pausing task as DEFERRED"
    inline_trigger: float | None  # "running trigger in line" -> "Trigger completed"
    poller_samples: int
    poller_errors: int


def run_dag(sandbox: SandboxHandle, root: Path, problems: list[str]) -> DagWait | None:
    from chatmaid_airflow.testing import DagTestHome, chatmaid_connection

    dag_file = root / f"{DAG_ID}.py"
    dag_file.write_text(DAG_SOURCE.format(dag_id=DAG_ID))
    home = DagTestHome.create(root / "airflow-home", [dag_file])
    poller = StatePoller(home.root / "airflow.db", DAG_ID, STATE_PERIOD)
    poller.start()
    connection = chatmaid_connection(sandbox.url, sandbox.live_key)
    try:
        result = home.run(dag_file.name, connections={"chatmaid_default": connection})
    finally:
        poller.stop()
    if result.state != "success":
        problems.append(f"dag.test(): the run ended {result.state}: {result.tasks}")
        return None
    messages = {m["id"]: m for m in sandbox.admin.messages()}
    windows: dict[str, tuple[float, float]] = {}
    for task_id in ("deferrable_wait", "blocking_wait"):
        returned = result.xcom(task_id)
        held = messages.get(result.xcom(task_id, key="message_id"), {})
        if returned.get("status") != "sent" or held.get("status") != "sent":
            problems.append(f"dag.test(): {task_id} returned {returned}, sandbox holds {held}")
            return None
        windows[task_id] = (timestamp(held["createdAt"]), timestamp(held["sentAt"]))
    with sqlite3.connect(home.root / "airflow.db") as db:
        row = db.execute(
            "SELECT t.classpath FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = ? AND ti.task_id = 'deferrable_wait'",
            (DAG_ID,),
        ).fetchone()
    deferred_at = log_time(result.output, r"Pausing task as DEFERRED")
    inline_from = log_time(result.output, r"\[DAG TEST\] running trigger in line")
    inline_to = log_time(result.output, r"\[DAG TEST\] Trigger completed")
    start, end = windows["deferrable_wait"]
    block_start, block_end = windows["blocking_wait"]
    return DagWait(
        seconds=result.seconds,
        window=end - start,
        deferred=share_not_running(poller.samples, "deferrable_wait", start, end),
        blocking=share_not_running(poller.samples, "blocking_wait", block_start, block_end),
        blocking_window=block_end - block_start,
        trigger_classpath=None if row is None else str(row[0]),
        defer_after_send=None if deferred_at is None else deferred_at - start,
        inline_trigger=(
            None if inline_from is None or inline_to is None else inline_to - inline_from
        ),
        poller_samples=len(poller.samples),
        poller_errors=poller.errors,
    )


# -- main -------------------------------------------------------------------------------


def poll_params(phase: Phase) -> dict[str, Any]:
    """What the timed polls of a phase show against the schedule."""
    offsets, implied = phase.settle_offsets(), phase.implied()
    after = phase.polls_after_settle()
    early, mean_late, max_late = phase.gaps()
    return {
        "implied_per_message_range": [min(implied), max(implied)],
        "settle_offset_s_range": [round(min(offsets), 3), round(max(offsets), 3)],
        "min_margin_to_a_poll_s": round(min(phase.margins()), 3),
        "messages_polled_more_than_once_after_settling": sum(n > 1 for n in after),
        "messages_whose_settling_poll_started_before_sentAt": sum(n == 0 for n in after),
        "polls_sooner_than_the_schedule": early,
        "poll_lateness_s_mean_max": [round(mean_late, 3), round(max_late, 3)],
    }


def per_waiter(value: int | None, waiters: int) -> int | None:
    """Bytes per waiter, rounded; ``None`` stays ``None``."""
    return None if value is None else round(value / waiters)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=200, help="triggers (and bare waiters)")
    parser.add_argument("--settle", type=float, default=30.0, help="live delay of phases 1-2")
    parser.add_argument("--dag-settle", type=float, default=8.0, help="live delay for dag.test")
    parser.add_argument(
        "--rate-limit", type=int, default=6000, help="per key per minute, sandbox and client"
    )
    parser.add_argument("--phase", choices=["triggers", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--warm-id", help=argparse.SUPPRESS)
    parser.add_argument("--airflow-home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        return phase_process(args)
    started = time.monotonic()
    problems: list[str] = []

    with (
        tempfile.TemporaryDirectory(prefix="bench-airflow-waits-") as tmp,
        start_sandbox_process(rate_limit=args.rate_limit, live_delay=0) as sandbox,
    ):
        warm_id = send_live(sandbox.url, 1, 9000)[0]  # live_delay 0: settled at once
        sandbox.admin.update_settings(live_delay=args.settle)
        print(f"phase 1: {args.waiters} ChatmaidMessageTriggers on one event loop", flush=True)
        triggers = run_phase(sandbox, "triggers", warm_id, Path(tmp), args, problems)
        print(f"phase 2: {args.waiters} bare httpx waiters on one event loop", flush=True)
        bare = run_phase(sandbox, "bare", warm_id, Path(tmp), args, problems)
        print("phase 3: dag.test() of a deferrable and a blocking send-and-wait", flush=True)
        sandbox.admin.update_settings(live_delay=args.dag_settle)
        dag = run_dag(sandbox, Path(tmp), problems)
        rate_limited = request_counts(sandbox)[1]
        if rate_limited:
            problems.append(f"the sandbox answered {rate_limited} 429s in the whole run")

    waiters = args.waiters
    schedule = {
        "poll_interval_s": POLL_INTERVAL,
        "backoff": BACKOFF,
        "max_poll_interval_s": MAX_POLL_INTERVAL,
    }
    if triggers and bare and triggers.complete() and bare.complete():
        implied = triggers.implied()
        bare_implied = bare.implied()
        emit(
            "airflow_trigger_calls_per_message",
            figure=triggers.calls / waiters,
            baseline=sum(implied) / waiters,
            unit="calls/message",
            target=CALLS_TARGET,
            higher_is_better=False,
            params={
                "waiters": waiters,
                "settle_s": args.settle,
                **schedule,
                "calls": triggers.calls,
                "implied_calls": sum(implied),
                "baseline_note": (
                    "implied = polls of the schedule from each message's first poll to the "
                    "first poll at or after its sentAt, with no time for the answers; the "
                    "schedule sleeps after each answer, so answer times under load push "
                    "polls later and can only lower the count"
                ),
                **poll_params(triggers),
                "wait_s": round(triggers.seconds, 1),
                "bare_calls_per_message": round(bare.calls / waiters, 3),
                "bare_implied_per_message": round(sum(bare_implied) / waiters, 3),
                **{f"bare_{name}": value for name, value in poll_params(bare).items()},
                "rate_limited_429": triggers.rate_limited,
                "rate_limit_per_min": args.rate_limit,
                "rate_limit_note": (
                    "sandbox limit and the connection's requests_per_minute extra both "
                    f"{args.rate_limit}/min; the API's and the core client's default is "
                    "100/min per key (one shared bucket per process, bursts of 10, then one "
                    "request per 0.6 s): the first polls of 200 triggers alone would take "
                    "about 2 minutes"
                ),
                "driver": "asyncio task per trigger, async for event in trigger.run() "
                "(TriggerRunner.run_trigger's shape, without greenback and span/log plumbing)",
            },
        )
        early, mean_late, max_late = triggers.gaps()
        again = sum(n > 1 for n in triggers.polls_after_settle())
        print(
            f"  triggers: {again} messages polled again after settling, {early} polls sooner "
            f"than the schedule; polls went out {mean_late:.2f} s late on average (at most "
            f"{max_late:.2f} s) as {waiters} answers queue, which can only lower the count; "
            f"bare httpx waiters: {bare.calls / waiters:.2f} calls/message",
            flush=True,
        )
        tm, bm = triggers.memory, bare.memory
        emit(
            "airflow_trigger_memory_per_waiter",
            figure=tm.peak / waiters,
            baseline=bm.peak / waiters,
            unit="bytes/waiter",
            target=MEMORY_TARGET,
            higher_is_better=False,
            params={
                "waiters": waiters,
                "measure": "tracemalloc peak during the phase minus its start, / waiters",
                "target_note": "informational: the issue sets no bar; 3.0 is a placeholder",
                "trigger_live_bytes_per_idle_waiter": per_waiter(tm.live, waiters),
                "bare_live_bytes_per_idle_waiter": per_waiter(bm.live, waiters),
                "live_note": (
                    f"tracemalloc {quiet_offset(args.settle):.3f} s into the phase, every "
                    "waiter asleep, after one gc.collect() (done in both phases): without "
                    "it, uncollected cycles of earlier polls' httpx objects dominate"
                ),
                "polls_in_flight_at_live_sample": [tm.in_flight_at_quiet, bm.in_flight_at_quiet],
                "trigger_rss_peak_bytes_per_waiter": per_waiter(tm.rss_peak, waiters),
                "bare_rss_peak_bytes_per_waiter": per_waiter(bm.rss_peak, waiters),
                "trigger_vmhwm_bytes_per_waiter": per_waiter(tm.hwm_peak, waiters),
                "bare_vmhwm_bytes_per_waiter": per_waiter(bm.hwm_peak, waiters),
                "rss_note": (
                    "each phase in a fresh process, after its warm-up; RSS includes "
                    "tracemalloc's own bookkeeping, which grows with the number of live "
                    "allocations"
                ),
                "trigger_side": f"{waiters} trigger objects and tasks, the shared "
                "AsyncChatmaidClient (connection lookup, rate limiter), the queued events",
                "baseline_side": f"{waiters} tasks, one httpx.AsyncClient",
            },
        )
        print(
            f"  live per idle waiter (after gc): trigger {per_waiter(tm.live, waiters)} B, "
            f"bare {per_waiter(bm.live, waiters)} B; RSS peak per waiter: trigger "
            f"{per_waiter(tm.rss_peak, waiters)} B, bare {per_waiter(bm.rss_peak, waiters)} B",
            flush=True,
        )
    if dag is not None:
        if dag.trigger_classpath != TRIGGER_CLASSPATH:
            problems.append(
                f"dag.test(): deferrable_wait recorded trigger {dag.trigger_classpath!r}, "
                f"expected {TRIGGER_CLASSPATH}"
            )
        if dag.blocking.observed - dag.blocking.not_running < 0.5 * dag.blocking_window:
            problems.append(
                "dag.test(): the state poller saw the blocking task running for "
                f"{dag.blocking.observed - dag.blocking.not_running:.2f} s of its "
                f"{dag.blocking_window:.2f} s wait: it cannot tell running apart"
            )
        emit(
            "airflow_deferred_share_of_wait",
            figure=dag.deferred.not_running,
            baseline=dag.window,
            unit="s not running while pending",
            target=DEFERRED_TARGET,
            params={
                "settle_s": args.dag_settle,
                "measure": "seconds the deferrable task instance was not 'running' while "
                "its message was pending (createdAt -> sentAt), from task_instance.state "
                f"read every {STATE_PERIOD} s",
                "states_seen_while_pending": dag.deferred.states,
                "observed_s": round(dag.deferred.observed, 3),
                "deferral_recorded": dag.trigger_classpath,
                "deferred_after_send_s": (
                    None if dag.defer_after_send is None else round(dag.defer_after_send, 3)
                ),
                "inline_trigger_s": (
                    None if dag.inline_trigger is None else round(dag.inline_trigger, 3)
                ),
                "blocking_share_not_running": round(
                    dag.blocking.not_running / dag.blocking_window, 3
                ),
                "blocking_states_seen_while_pending": dag.blocking.states,
                "poller_samples": dag.poller_samples,
                "poller_errors": dag.poller_errors,
                "run_s": round(dag.seconds, 1),
                "note": (
                    "dag.test() runs the trigger inline, in the process that ran the task: "
                    "on deferral it sets the task instance 'deferred' (a trigger row is "
                    "written) and at once 'queued' while the trigger runs "
                    "(airflow/sdk/definitions/dag.py _run_task), so 'deferred' lasts "
                    "milliseconds. What this proves: execute() returned by deferring right "
                    "after the send and the task was not running while the message was "
                    "pending; in production the worker process exits at that point and the "
                    "triggerer runs the trigger"
                ),
            },
        )
        print(
            f"  dag.test(): deferrable task not running for {dag.deferred.not_running:.2f} s "
            f"of its {dag.window:.2f} s pending (states {dag.deferred.states}); the blocking "
            f"one for {dag.blocking.not_running:.2f} s of {dag.blocking_window:.2f} s "
            f"(states {dag.blocking.states}); deferred {dag.defer_after_send or 0:.3f} s "
            f"after the send, trigger ran inline for {dag.inline_trigger or 0:.2f} s",
            flush=True,
        )
    print(f"airflow waits: {time.monotonic() - started:.0f} s in all", flush=True)
    return fail(problems)


if __name__ == "__main__":
    sys.exit(main())
