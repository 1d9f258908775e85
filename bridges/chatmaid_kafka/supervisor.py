"""``chatmaid-bridge consume --processes N``: N consumer processes of one group, one
command.

One Python process sends at most what one core allows (the GIL); N processes on one
host use N. The supervisor starts N ``consume`` workers (the same flags, one consumer
each in the group, ``/healthz`` and ``/metrics`` on ``--port`` + i, static member IDs
``<--group-instance-id>-<i>`` when one is given), forwards SIGTERM/SIGINT to them,
starts a worker again if it dies (after 1 s, then up to 30 s between tries), and exits
once all have stopped: 0 if every worker stopped cleanly on a signal. Workers get
SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from .settings import BridgeSettings

logger = logging.getLogger("chatmaid_kafka.supervisor")

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
PR_SET_PDEATHSIG = 1


def worker_command(argv: Sequence[str], settings: BridgeSettings, index: int) -> list[str]:
    """The command line of worker ``index``: the same flags, one process, its own port
    and member IDs (later flags win)."""
    port = 0 if settings.port == 0 else settings.port + index
    extra = ["--processes", "1", "--port", str(port)]
    if settings.group_instance_id is not None:
        extra += ["--group-instance-id", f"{settings.group_instance_id}-{index}"]
    if settings.transactional_id is not None:
        extra += ["--transactional-id", f"{settings.transactional_id}-{index}"]
    return [sys.executable, "-m", "chatmaid_kafka.cli", *argv, *extra]


def supervise(argv: Sequence[str], settings: BridgeSettings) -> int:
    """Run ``settings.processes`` workers until a signal; the exit code."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    commands = [worker_command(argv, settings, i) for i in range(settings.processes)]
    workers = [_start(command) for command in commands]
    failures = [0] * len(workers)
    restart_at = [0.0] * len(workers)
    logger.info("started %d consumer processes: %s", len(workers), [w.pid for w in workers])
    while not stop.wait(0.2):
        for i, worker in enumerate(workers):
            code = worker.poll()
            if code is None or time.monotonic() < restart_at[i]:
                continue
            if restart_at[i] == 0.0:
                delay = RESTART_BACKOFF[min(failures[i], len(RESTART_BACKOFF) - 1)]
                failures[i] += 1
                restart_at[i] = time.monotonic() + delay
                logger.error("consumer process %d exited %s; starting it again in %gs",
                             i, code, delay)  # fmt: skip
                continue
            restart_at[i] = 0.0
            workers[i] = _start(commands[i])
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    codes = [worker.wait() for worker in workers]
    return 0 if all(code == 0 for code in codes) else 1


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, preexec_fn=_end_with_the_supervisor)  # noqa: S603


def _end_with_the_supervisor() -> None:
    """In the worker, before it runs: SIGTERM it when the supervisor dies, even by
    SIGKILL (Linux ``PR_SET_PDEATHSIG``), so no worker outlives it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
