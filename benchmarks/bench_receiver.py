"""Kafka bridge webhook receiver: signed webhooks a second, against a bare endpoint.

The receiver is ``chatmaid-bridge receive`` in a subprocess (uvicorn with uvloop and
httptools, in front of the development Kafka broker; results produced with acks=all
and each webhook answered only after Kafka acknowledged its record). Before it starts,
its correlation topic is filled with ``--pool`` records (messageId -> eventId), so every
webhook finds its event in the receiver's index as in production (the receiver tails
the topic; probes on the last messageId of each partition tell when it caught up).
The baseline is a bare Starlette route answering a fixed 200 on the same server stack
(``chatmaid.sandbox.server.make_server``), in its own process. The load generator is
this process: raw asyncio HTTP/1.1 keep-alive connections (uvloop), each request a
``message.sent`` webhook signed with ``chatmaid.webhooks.sign``, with its own
``X-Chatmaid-Delivery`` and messageId, so none is a duplicate.

1. **Capacity**: ``--concurrency`` (32) connections closed-loop, a warm-up then a
   ``--duration`` window, rounds A-B-B-A; figure and baseline are the means. Bar: at
   least 0.3 of the bare endpoint.
2. **Latency at half capacity**: open-loop pacing at half the receiver's measured
   rate for ``--latency-duration`` seconds (up to 64 connections), each latency taken
   from the request's scheduled time, so a stall is not hidden by the generator
   waiting. Figure: p99 in ms; the baseline is the bar itself (50 ms), so the ratio
   is p99 / 50 ms (at most 1). p50 and the bare endpoint's latencies at the same
   offered rate are in the params.

Correctness (exit 1 if any fails): the receiver answers 200 to every webhook, and the
results topic holds exactly one record for each answered messageId and none for any
other; the bare endpoint answers only 200. About 1 minute.

    .venv/bin/python benchmarks/bench_receiver.py [--duration 4] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

from chatmaid.webhooks import sign
from chatmaid_kafka.records import Correlation
from chatmaid_kafka.testing import TopicReader, TopicSet

from _baseline import fixed_endpoint
from _hand_written_receiver import hand_written_receiver
from _kafka_bench import (
    WEBHOOK_SECRET,
    BenchError,
    BridgeProcess,
    broker,
    fresh_topics,
    peak_rss,
    produce,
    values,
)
from _report import alternate, emit, fail

CAPACITY_TARGET = 0.3
HAND_WRITTEN_TARGET = 0.85  # as the client's overhead against bare httpx
P99_BAR_MS = 50.0
LATENCY_CONNECTIONS = 64
PROBES_PER_PARTITION = 5
PATH = "/webhooks/chatmaid"
FIXED_BODY = b'{"ok":true,"duplicate":false}'
T = TypeVar("T")


# -- webhooks ---------------------------------------------------------------------------


class MessageIds:
    """Hands out messageIds of the series ``run``, each once: those with correlation
    records (``pool`` of them), or with ``pool=None`` a series without any (for the
    baselines)."""

    def __init__(self, run: str, pool: int | None) -> None:
        self.run = run
        self.pool = pool
        self.next = 0

    def take(self) -> str:
        if self.pool is not None and self.next >= self.pool:
            raise BenchError(f"all {self.pool} correlated messageIds used: raise --pool")
        self.next += 1
        return message_id(self.run, self.next - 1)


def message_id(run: str, index: int) -> str:
    return f"msg_{run}_{index}"


def probe_id(run: str, partition: int, attempt: int) -> str:
    return f"msg_{run}_probe_{partition}_{attempt}"


def webhook_request(host: str, port: int, message: str) -> bytes:
    """A signed ``message.sent`` delivery of ``message`` (a fresh delivery ID)."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = json.dumps(
        {
            "event": "message.sent",
            "timestamp": now,
            "data": {
                "messageId": message,
                "from": "+15551234567",
                "to": "+15557654321",
                "status": "sent",
                "environment": "test",
                "sentAt": now,
            },
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"X-Chatmaid-Event: message.sent\r\nX-Chatmaid-Signature: {sign(body, WEBHOOK_SECRET)}\r\n"
        f"X-Chatmaid-Delivery: dlv_{uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def fill_correlations(topics: TopicSet, run: str, pool: int) -> None:
    """``pool`` correlation records, round-robin over the partitions, then the probes
    last in each partition."""

    def records() -> Iterator[tuple[bytes | None, bytes]]:
        for index in range(pool):
            yield message_id(run, index).encode(), correlation(f"ev-{run}-{index}")
        for attempt in range(PROBES_PER_PARTITION):
            for partition in range(topics.partitions):
                yield (
                    probe_id(run, partition, attempt).encode(),
                    correlation(f"probe-{partition}-{attempt}"),
                )

    produce(topics.bootstrap, topics.correlation, records(), partitions=topics.partitions)


def correlation(event_id: str) -> bytes:
    return Correlation(event_id=event_id, idempotency_key=f"kafka-{event_id}").to_bytes()


# -- the load generator -----------------------------------------------------------------


@dataclass
class Load:
    """Answers by status, the messageIds answered 2xx, and latencies (seconds)."""

    statuses: Counter[int] = field(default_factory=Counter)
    answered: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done: int = 0


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, request: bytes) -> int:
        """Send ``request``; the answer's status once its body is read."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        start = head.lower().find(b"content-length:") + len(b"content-length:")
        length = int(head[start : head.find(b"\r\n", start)])
        await self.reader.readexactly(length)
        return int(head[9:12])

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def closed_loop(
    url: str, ids: MessageIds, concurrency: int, warmup: float, duration: float
) -> tuple[float, Load]:
    """Requests/s over the measured window with ``concurrency`` busy connections."""
    host, port = address(url)
    load = Load()
    stop_at = time.monotonic() + warmup + duration

    async def worker() -> None:
        connection = await Connection.open(host, port)
        while time.monotonic() < stop_at:
            message = ids.take()
            status = await connection.post(webhook_request(host, port, message))
            load.statuses[status] += 1
            load.done += 1
            if 200 <= status < 300:
                load.answered.append(message)
        await connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    first, started = load.done, time.monotonic()
    await asyncio.sleep(duration)
    last, elapsed = load.done, time.monotonic() - started
    await asyncio.gather(*workers)
    return (last - first) / elapsed, load


async def open_loop(url: str, ids: MessageIds, rate: float, duration: float) -> Load:
    """Requests at ``rate`` a second on a fixed schedule; latency from scheduled time."""
    host, port = address(url)
    load = Load()
    total = int(rate * duration)
    slots = iter(range(total))
    connections = [await Connection.open(host, port) for _ in range(LATENCY_CONNECTIONS)]
    start = time.monotonic() + 0.2

    async def worker(connection: Connection) -> None:
        for slot in slots:
            due = start + slot / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            message = ids.take()
            status = await connection.post(webhook_request(host, port, message))
            load.latencies.append(time.monotonic() - due)
            load.statuses[status] += 1
            if 200 <= status < 300:
                load.answered.append(message)
        await connection.close()

    await asyncio.gather(*(worker(c) for c in connections))
    return load


def run_loop(coroutine: Awaitable[T]) -> T:
    """Run on uvloop when installed (as bench_sandbox does)."""

    async def main() -> T:
        return await coroutine

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the sandbox extra
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def wait_for_index(url: str, run: str, partitions: int) -> float:
    """Seconds until a probe on the last messageId of every partition is answered at once
    (the receiver's index holds everything before it); raise if it never is."""
    host, port = address(url)

    async def probe(message: str) -> float:
        connection = await Connection.open(host, port)
        started = time.monotonic()
        status = await connection.post(webhook_request(host, port, message))
        await connection.close()
        if status != 200:
            raise BenchError(f"probe {message} answered {status}")
        return time.monotonic() - started

    began = time.monotonic()
    for partition in range(partitions):
        for attempt in range(PROBES_PER_PARTITION):
            if run_loop(probe(probe_id(run, partition, attempt))) < 0.5:
                break
        else:
            raise BenchError(f"the receiver's index never caught up on partition {partition}")
    return time.monotonic() - began


def check_records(
    who: str,
    loads: list[Load],
    records: list[dict[str, Any]],
    probes: str | None,
    problems: list[str],
) -> set[str]:
    """Note in ``problems`` unless ``who`` answered only 200 and its topic holds exactly
    one record for each answered messageId and none for any other (probes: a prefix of
    messageIds left out); the messageIds of its records."""
    answered = [m for load in loads for m in load.answered]
    statuses: Counter[int] = Counter()
    for load in loads:
        statuses.update(load.statuses)
    per_message = Counter(r["messageId"] for r in records)
    mine = {m for m in per_message if m and not (probes and m.startswith(probes))}
    missing = sum(per_message[m] == 0 for m in answered)
    doubled = sum(per_message[m] > 1 for m in answered)
    stray = len(mine - set(answered))
    if set(statuses) != {200}:
        problems.append(f"{who} answered {dict(statuses)}, expected only 200")
    if missing or doubled or stray:
        problems.append(
            f"{who}'s results: {missing} answered webhooks without a record, {doubled} with "
            f"more than one, {stray} records for webhooks not answered 2xx"
        )
    return mine


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- main -------------------------------------------------------------------------------


def measure(args: argparse.Namespace, bootstrap: str) -> int:
    problems: list[str] = []
    run = uuid.uuid4().hex[:8]
    ids = MessageIds(run, args.pool)
    sources = {"receiver": ids, "hand_written": MessageIds(f"{run}_hand", None),
               "bare": MessageIds(f"{run}_bare", None)}  # fmt: skip
    receiver_loads: list[Load] = []
    hand_loads: list[Load] = []
    bare_statuses: Counter[int] = Counter()
    with (
        fresh_topics(bootstrap, "receiver", args.partitions) as topics,
        fresh_topics(bootstrap, "hand", args.partitions) as hand_topics,
    ):
        filled = time.monotonic()
        fill_correlations(topics, run, args.pool)
        filled = time.monotonic() - filled
        remembered = [
            "--correlation-capacity",
            str(args.pool + topics.partitions * PROBES_PER_PARTITION),
        ]
        receiver = BridgeProcess(
            "receive", [*topics.flags("receive"), *remembered], webhook_secret=WEBHOOK_SECRET
        )
        with (
            receiver,
            fixed_endpoint(PATH, 200, FIXED_BODY) as bare_url,
            hand_written_receiver(bootstrap, hand_topics.results, WEBHOOK_SECRET) as hand_url,
        ):
            receiver.start()
            caught_up = wait_for_index(receiver.url, run, args.partitions)
            urls = {"receiver": receiver.url, "hand_written": hand_url, "bare": bare_url}
            loads = {"receiver": receiver_loads, "hand_written": hand_loads}

            def closed_round(name: str) -> float:
                rate, load = run_loop(
                    closed_loop(
                        urls[name], sources[name], args.concurrency, args.warmup, args.duration
                    )
                )
                print(f"    {name}: {rate:,.0f} webhooks/s", flush=True)
                if name in loads:
                    loads[name].append(load)
                else:
                    bare_statuses.update(load.statuses)
                return rate

            rates = alternate(args.rounds, list(urls), closed_round)
            capacity = statistics.mean(rates["receiver"])
            half = capacity / 2
            latency_load = run_loop(open_loop(receiver.url, ids, half, args.latency_duration))
            receiver_loads.append(latency_load)
            bare_latency = run_loop(
                open_loop(bare_url, sources["bare"], half, args.latency_duration)
            )
            bare_statuses.update(bare_latency.statuses)
            assert receiver.process is not None
            receiver_peak_mb = peak_rss(receiver.process.pid) / (1024 * 1024)
            unavailable = receiver.metric("chatmaid_bridge_webhooks_unavailable_total")
            duplicates = receiver.metric("chatmaid_bridge_webhooks_duplicate_total")
            if receiver.terminate() != 0:
                problems.append("the receiver did not exit 0 on SIGTERM")
        with TopicReader(bootstrap, topics.results) as results:
            records = values(results.settle(1.5))
        with TopicReader(bootstrap, hand_topics.results) as results:
            hand_records = values(results.settle(1.5))

    mine = check_records("the receiver", receiver_loads, records, f"msg_{run}_probe_", problems)
    uncorrelated = sum(1 for r in records if r["eventId"] is None and r["messageId"] in mine)
    check_records("the hand-written receiver", hand_loads, hand_records, None, problems)
    if set(bare_statuses) != {200}:
        problems.append(f"the bare endpoint answered {dict(bare_statuses)}")
    if uncorrelated:
        print(f"  note: {uncorrelated} records without an eventId (index not caught up)")

    common = {
        "concurrency": args.concurrency,
        "partitions": args.partitions,
        "acks": "all",
        "server": "uvicorn (uvloop, httptools), one process each",
        "load_generator": "raw asyncio HTTP/1.1 keep-alive, uvloop, one process",
        "correlated_message_ids": args.pool,
        "correlation_fill_s": round(filled, 1),
        "index_caught_up_s": round(caught_up, 1),
        "records_without_event_id": uncorrelated,
        "webhooks_unavailable_503": unavailable,
        "webhooks_duplicate": duplicates,
        "webhooks_answered": sum(len(load.answered) for load in receiver_loads),
    }
    emit(
        "bridge_receiver_capacity",
        figure=capacity,
        baseline=statistics.mean(rates["bare"]),
        unit="webhooks/s",
        target=CAPACITY_TARGET,
        params={
            **common,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "receiver_rounds": [round(r) for r in rates["receiver"]],
            "bare_rounds": [round(r) for r in rates["bare"]],
            "baseline": "bare Starlette route answering a fixed 200, same server stack",
        },
    )
    emit(
        "bridge_receiver_capacity_vs_hand_written",
        figure=capacity,
        baseline=statistics.mean(rates["hand_written"]),
        unit="webhooks/s",
        target=HAND_WRITTEN_TARGET,
        params={
            **common,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "hand_written_rounds": [round(r) for r in rates["hand_written"]],
            "baseline": "the receiver a user would hand-write (benchmarks/"
            "_hand_written_receiver.py): HMAC check, one record with acks=all, 200 after "
            "the ack; no typed parsing, correlation, de-duplication or metrics (mean)",
        },
    )
    p99 = percentile(latency_load.latencies, 0.99) * 1000
    emit(
        "bridge_receiver_p99_half_capacity",
        figure=p99,
        baseline=P99_BAR_MS,
        unit="ms",
        target=1.0,
        higher_is_better=False,
        params={
            **common,
            "offered_rate_per_s": round(half),
            "duration_s": args.latency_duration,
            "connections": LATENCY_CONNECTIONS,
            "pacing": "open loop; latency from each request's scheduled time",
            "p50_ms": round(percentile(latency_load.latencies, 0.5) * 1000, 2),
            "p99_ms": round(p99, 2),
            "max_ms": round(max(latency_load.latencies) * 1000, 2),
            "bare_p50_ms": round(percentile(bare_latency.latencies, 0.5) * 1000, 2),
            "bare_p99_ms": round(percentile(bare_latency.latencies, 0.99) * 1000, 2),
            "receiver_peak_rss_mb": round(receiver_peak_mb, 1),
            "peak_rss_bar_mb": 300,
            "baseline": "the bar: p99 under 50 ms",
        },
    )
    return fail(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds a round")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per server (A-B-B-A)")
    parser.add_argument("--latency-duration", type=float, default=5.0, help="paced seconds")
    parser.add_argument("--partitions", type=int, default=4, help="topic partitions")
    # A round at ~6,000/s uses ~30,000; 50,000 ran out. Far more delays the index's catch-up.
    parser.add_argument(
        "--pool",
        type=int,
        default=200_000,
        help="correlated messageIds (the receiver is told to remember them all)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    with broker() as bootstrap:
        code = measure(args, bootstrap)
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
