"""Kafka bridge under crashes: throughput with a consumer killed every few seconds,
against the same group with no fault, in the same run.

Three ``chatmaid-bridge consume`` processes in one group with dynamic membership (no
``--group-instance-id``) share a fresh 6-partition topic; the sandbox (own process)
adds ``--latency`` (0.05 s) to each send. A round produces ``--events`` (1,000) notify
events and times them from the first send to the last (the sandbox's ``createdAt``).
The baseline round has no fault; in the measured round one process, in turn, is
killed with SIGKILL every ``--kill-every`` seconds (3) and started again at once.
Figure: events/s of the kill round; baseline: events/s of the no-fault round. Bar: 0.5.
``--partition-assignment`` (eager or cooperative-sticky) and ``--session-timeout-ms``
choose the group's protocol and how soon a dead member is noticed; by default the
bridge's own (cooperative-sticky, 6 s).

Correctness (exit 1 if it fails): every event sent exactly once (content markers).

    .venv/bin/python benchmarks/bench_bridge_kills.py [--partition-assignment eager]
        [--session-timeout-ms 45000]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from chatmaid.sandbox import SandboxHandle, start_sandbox_process
from chatmaid_kafka.settings import BridgeSettings

from _kafka_bench import (
    BenchError,
    BridgeProcess,
    broker,
    duplicates_and_missing,
    fresh_topics,
    notify_event,
    produce_events,
    run_id,
)
from _report import emit, fail

TARGET = 0.5
#: The group's protocol and session timeout: the bridge's own defaults unless told.
DEFAULTS = {
    name: BridgeSettings.model_fields[name].default
    for name in ("partition_assignment", "session_timeout_ms")
}
PROCESSES = 3


def sent_times(sandbox: SandboxHandle, marker: str) -> list[float]:
    """The sandbox's createdAt of each message of this round."""
    return sorted(
        datetime.fromisoformat(m["createdAt"].replace("Z", "+00:00")).timestamp()
        for m in sandbox.admin.messages()
        if (m.get("content") or "").startswith(marker)
    )


def round_(bootstrap: str, sandbox: SandboxHandle, args: argparse.Namespace, *, kills: bool,
           problems: list[str]) -> tuple[float, int]:  # fmt: skip
    """One round: its events/s, and how many kills it took."""
    run = run_id()
    marker = f"bench {run} "
    with fresh_topics(bootstrap, "kills", partitions=6) as topics:
        flags = [*topics.flags(), "--requests-per-minute", "0", "--concurrency", "8",
                 "--partition-assignment", args.partition_assignment,
                 "--session-timeout-ms", str(args.session_timeout_ms)]  # fmt: skip
        bridges = [
            BridgeProcess("consume", flags, api_key=sandbox.test_key, base_url=sandbox.url)
            for _ in range(PROCESSES)
        ]
        try:
            for bridge in bridges:
                bridge.start()
            events = [notify_event(run, i) for i in range(args.events)]
            produce_events(bootstrap, topics.notify, events)
            killed = 0
            deadline = time.monotonic() + args.timeout
            while len(sent_times(sandbox, marker)) < args.events:
                if time.monotonic() > deadline:
                    raise BenchError(f"not every event sent within {args.timeout:g}s")
                if kills:
                    time.sleep(args.kill_every)
                    victim = bridges[killed % PROCESSES]
                    victim.kill()
                    victim.start()
                    killed += 1
                else:
                    time.sleep(0.2)
            times = sent_times(sandbox, marker)
            contents = [
                m["content"] for m in sandbox.admin.messages()
                if (m.get("content") or "").startswith(marker)
            ]  # fmt: skip
            dup, missing = duplicates_and_missing(
                contents, [f"{marker}{i}" for i in range(args.events)]
            )
            if dup or missing:
                problems.append(f"{'kill' if kills else 'no-fault'} round: {dup} sent twice, "
                                f"{missing} never sent")  # fmt: skip
        finally:
            for bridge in bridges:
                bridge.cleanup()
    span = max(times[-1] - times[0], 1e-3)
    return len(times) / span, killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per send")
    parser.add_argument("--partition-assignment", default=DEFAULTS["partition_assignment"],
                        choices=["eager", "cooperative-sticky"])  # fmt: skip
    parser.add_argument("--session-timeout-ms", type=int, default=DEFAULTS["session_timeout_ms"])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per round")
    args = parser.parse_args()
    problems: list[str] = []
    with broker() as bootstrap, start_sandbox_process(rate_limit=0) as sandbox:
        sandbox.admin.inject_latency(args.latency, path="/v1/messages/send")
        calm, _ = round_(bootstrap, sandbox, args, kills=False, problems=problems)
        rough, killed = round_(bootstrap, sandbox, args, kills=True, problems=problems)
    emit(
        "bridge_throughput_under_kills",
        figure=rough,
        baseline=calm,
        unit="events/s",
        target=TARGET,
        params={
            "events": args.events,
            "processes": PROCESSES,
            "partitions": 6,
            "membership": "dynamic",
            "kill_every_s": args.kill_every,
            "kills": killed,
            "latency_s": args.latency,
            "partition_assignment": args.partition_assignment,
            "session_timeout_ms": args.session_timeout_ms,
        },
    )
    return fail(problems)


if __name__ == "__main__":
    sys.exit(main())
