"""Peak memory of one bridge process: a 10,000-event backlog with 512 sends in flight.

One sandbox in its own process (rate limit off) adds ``--latency`` (1 s) to every send,
so a bridge with ``--concurrency 512`` holds 512 sends in flight while the rest of the
backlog waits in Kafka. The figure is the bridge's peak resident memory (``VmHWM``
from ``/proc``) once every event is accepted; the baseline is the peak of the same
command, same flags, with an empty notify topic, in the same run: the ratio says what
the load costs over the process at rest. Bar: a peak under ``--bar-mb`` (300 MB),
printed as the ratio ``bar / idle peak`` that the loaded/idle ratio must stay under.

Correctness (exit 1): every event has exactly one ``message.accepted`` record and no
dead letter. Takes about a minute.

    .venv/bin/python benchmarks/bench_memory.py [--events 10000] [--concurrency 512]
"""

from __future__ import annotations

import argparse
import sys
import time

from chatmaid.sandbox import SandboxHandle, start_sandbox_process
from chatmaid_kafka.testing import TopicReader

from _kafka_bench import (
    BridgeProcess,
    broker,
    duplicates_and_missing,
    fresh_topics,
    notify_event,
    peak_rss,
    produce_events,
    reached,
    run_id,
    values,
)
from _report import emit, fail

MB = 1024 * 1024


def bridge_peak(
    bootstrap: str,
    sandbox: SandboxHandle,
    args: argparse.Namespace,
    events: int,
    problems: list[str],
) -> tuple[int, float]:
    """Peak RSS (bytes) of a bridge that works through ``events`` events, and its seconds."""
    run = run_id()
    batch = [notify_event(run, i) for i in range(events)]
    with fresh_topics(bootstrap, "memory", args.partitions) as topics:
        if batch:
            produce_events(bootstrap, topics.notify, batch)
        flags = [
            *topics.flags("consume"),
            "--requests-per-minute",
            "0",
            "--concurrency",
            str(args.concurrency),
        ]
        bridge = BridgeProcess("consume", flags, api_key=sandbox.test_key, base_url=sandbox.url)
        with bridge, TopicReader(bootstrap, topics.results) as results:
            started = time.monotonic()
            bridge.start()
            if batch:
                if not reached(results, lambda r: len(r) >= events, args.timeout):
                    problems.append(f"memory {run}: not every event accepted in time")
            else:
                time.sleep(args.idle)
            assert bridge.process is not None
            peak = peak_rss(bridge.process.pid)
            seconds = time.monotonic() - started
            records = results.settle(1.0)
            bridge.terminate()
        with TopicReader(bootstrap, topics.dlq) as dlq:
            letters = dlq.settle(0.5)
    accepted = [v["eventId"] for v in values(records) if v["type"] == "message.accepted"]
    duplicated, missing = duplicates_and_missing(accepted, [e["eventId"] for e in batch])
    if duplicated or missing or letters:
        problems.append(
            f"memory {run}: {missing} missing, {duplicated} duplicated, {len(letters)} dead letters"
        )
    return peak, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="backlog size")
    parser.add_argument("--concurrency", type=int, default=512, help="sends in flight")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds added to a send")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds the idle run lasts")
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--bar-mb", type=float, default=300.0)
    args = parser.parse_args()

    problems: list[str] = []
    with broker() as bootstrap, start_sandbox_process(rate_limit=0) as sandbox:
        sandbox.admin.inject_latency(args.latency, path="/v1/messages/send")
        idle, _ = bridge_peak(bootstrap, sandbox, args, 0, problems)
        loaded, seconds = bridge_peak(bootstrap, sandbox, args, args.events, problems)
    params = {
        "events": args.events,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "seconds": round(seconds, 1),
        "idle_peak_mb": round(idle / MB, 1),
        "bar_mb": args.bar_mb,
    }
    emit(
        "bridge_memory_under_load",
        figure=loaded / MB,
        baseline=idle / MB,
        unit="MB (peak RSS, loaded vs idle)",
        target=round(args.bar_mb * MB / idle, 2),
        higher_is_better=False,
        params=params,
    )
    return fail(problems)


if __name__ == "__main__":
    sys.exit(main())
