"""Kafka bridge throughput: notify events to accepted results a second, at two latencies.

One sandbox in its own process (rate limit off) and the development Kafka broker
(``scripts/kafka.sh``; started for the run only if it is not running). Each round gets
fresh topics (notify: 4 partitions) and a fresh consumer group; 2,000 notify events,
each with a unique eventId and its own Kafka key, are produced first. Then the bridge
runs as ``chatmaid-bridge consume`` in a subprocess with its default ``--concurrency``
and its client rate limiter off. The figure is events/s from the consumer's partition
assignment (its ``assigned`` log line) to the broker's append time of the last
``message.accepted`` record (the results topic uses ``LogAppendTime``), so process
start, imports and the group join are not counted; everything after is. The harness
reads the results only after the group committed every event (it watches the group's
offsets meanwhile, two small admin requests a second), so that it takes no CPU from the
bridge it measures.

1. ``--latency 0.1`` (the sandbox adds 100 ms to every ``POST /v1/messages/send``):
   versus the naive bridge a user would write, in this process: a kafka-python loop
   that polls one record at a time, sends it with a blocking ``httpx.Client.post`` and
   ``commit()``s after each, over the same kind of topic. It is latency-bound and steady,
   so it runs on ``--naive-events`` (150) events; it publishes no result records, which
   makes the comparison conservative. Bar: at least 10 times the naive bridge. The same
   bridge with ``--exactly-once`` (results read as read_committed) is set against it:
   bar 0.7. The bridge is also set against its own bound, ``concurrency / latency``
   (32 / 0.1 s = 320/s), at its default concurrency and at each ``--sweep`` value (128,
   512; ``--events`` scaled by the concurrency, so that every run is as long at its
   bound): bar 0.85. At each ``--sweep`` value it is also set against the hand-written
   pipeline of 2. with as many sends in flight, which says what this machine allows
   where the bound is beyond it (512 / 0.1 s = 5,120/s is more than raw httpx alone
   reaches here): bar 0.85.
2. ``--latency 0`` (near the machine's limit): versus the highest rate raw httpx
   reaches posting the same sends to the same sandbox without Kafka, in this process,
   with as many tasks and connections as the bridge's concurrency: one
   ``httpx.AsyncClient`` holding them all (the bridge's layout), and the same
   connections split over 8 clients (``--raw-pools``; httpcore's pool does work per
   request that grows with its connections, so the split is much faster). A
   ``--raw-duration`` window after a warm-up; the baseline is the best round of any
   split, each split's rounds are in the params. Bar: at least 0.7. And versus the
   pipeline a user would hand-write for the bridge's whole job, in this process (the
   same events, topics and timing as the bridge): kafka-python polls up to 500 events,
   ``CONCURRENCY`` tasks send them over the raw baseline's best split of httpx clients,
   each accepted send's result and correlation records are produced (acks=all), then a
   flush and a commit. No validation, typed models, retries, rate limit or per-event
   commit order. Bar: at least 0.85, the client's own bar against bare httpx.
3. Scale-out on one host, at ``--latency 0``: ``consume --processes 2`` against one
   process over ``--scale-events`` (8,000) events, produced only once every process
   has partitions (a group's first rebalance takes seconds, which would leave one
   process alone with most of the events), each run timed from the start of their
   production to the last ``message.accepted`` appended. Bar: 1.6 times.

``--linger MS`` runs every bridge with ``--producer-linger-ms MS`` (its params say
which): two runs, ``--linger 5`` and ``--linger 25``, compare producer lingers, each
ratio against raw httpx in its own run.

Rounds alternate A-B-B-A. Correctness, checked at the end (exit 1 if any fails): every
event has a ``message.accepted`` record (exactly one with one process; a second
process's joining may publish one twice, at-least-once) and no dead letter; the sandbox holds
exactly one message per event (by content marker) for the bridge, the naive loop and
the hand-written pipeline (which also has one result record per event), and exactly
as many raw sends as were acknowledged; the bridge exits 0 on SIGTERM.
Takes about 3 minutes.

    .venv/bin/python benchmarks/bench_bridge_throughput.py [--latency 0.1 0] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from kafka import ConsumerRebalanceListener
from kafka.consumer import KafkaConsumer
from kafka.producer import KafkaProducer

from chatmaid.sandbox import SEED, SandboxHandle, start_sandbox_process
from chatmaid_kafka.settings import BridgeSettings
from chatmaid_kafka.testing import TopicReader, TopicSet

from _cpu import CpuSample, cores_between, sample
from _kafka_bench import (
    BenchError,
    BridgeProcess,
    broker,
    committed_all,
    duplicates_and_missing,
    fresh_topics,
    notify_event,
    produce_events,
    run_id,
    values,
)
from _report import alternate, emit, fail

NAIVE_TARGET = 10.0
RAW_TARGET = 0.7
HAND_WRITTEN_TARGET = 0.85  # as the client's overhead against bare httpx
EXACTLY_ONCE_TARGET = 0.7
BOUND_TARGET = 0.85
#: Every send takes at least the added latency and every one starts after the timed
#: window opens, so no run can beat its bound; 2 % leaves room for the clocks' rounding.
BOUND_SLACK = 1.02
SCALE_TARGETS = {2: 1.6}  # consume --processes N vs one process, on this 2-CPU machine
CONCURRENCY = int(BridgeSettings.model_fields["concurrency"].default)
LOG_APPEND_TIME_TYPE = 1  # kafka-python's record.timestamp_type for LogAppendTime
#: The busy cores of a run's timed window (``_cpu.cores_between``), in runs long enough.
CPU_DETAILS = ("bridge_cores", "machine_busy_cores")
#: What ``bridge_round`` tells of each run.
RUN_DETAILS = ("bridge_seconds", "bridge_api_retries", "timed_events", "duplicated_records",
               *CPU_DETAILS)  # fmt: skip


@dataclass
class Checks:
    """What the sandbox must hold at the end, and the problems found so far."""

    problems: list[str] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)  # content-marker run -> events
    raw_runs: dict[str, int] = field(default_factory=dict)  # raw run -> acknowledged


# -- the bridge -------------------------------------------------------------------------


def bridge_round(
    bootstrap: str,
    sandbox: SandboxHandle,
    args: argparse.Namespace,
    checks: Checks,
    *,
    exactly_once: bool = False,
    concurrency: int = CONCURRENCY,
    events: int | None = None,
    processes: int = 1,
    produce_when_settled: bool = False,
) -> tuple[float, dict[str, Any]]:
    """Events/s of one bridge run over ``args.events`` fresh events, and its details
    (``exactly_once``: with ``--exactly-once``, results read as read_committed;
    ``processes``: ``consume --processes N``, timed from the moment all N have
    partitions, over the records appended from then on; ``produce_when_settled``: the
    events are produced only then, and timed from the start of their production, so
    that every process has a share of them all along)."""
    run = run_id()
    count = events or args.events
    batch = [notify_event(run, i) for i in range(count)]
    expected = [e["eventId"] for e in batch]
    checks.runs[run] = count
    with fresh_topics(bootstrap, "throughput", args.partitions) as topics:
        if not produce_when_settled:
            produce_events(bootstrap, topics.notify, batch)
        flags = [*topics.flags("consume"), "--requests-per-minute", "0",
                 "--concurrency", str(concurrency), "--processes", str(processes)]  # fmt: skip
        if exactly_once:
            flags.append("--exactly-once")
        if args.linger is not None:
            flags += ["--producer-linger-ms", str(args.linger)]
        bridge = BridgeProcess("consume", flags, api_key=sandbox.test_key, base_url=sandbox.url)
        with bridge:
            bridge.start()
            assigned = None
            if produce_when_settled:
                bridge.wait_settled(processes, args.timeout)
                assigned = time.time()
                produce_events(bootstrap, topics.notify, batch)
            samples: list[CpuSample] = []
            pid = bridge.pid
            complete = committed_all(
                bootstrap,
                topics.group,
                count,
                args.timeout,
                tick=lambda: samples.append(sample(pid)),
            )
            retries = bridge.metric("chatmaid_bridge_api_retries_total")
            code = bridge.terminate()
            if assigned is None:
                assigned = bridge.settled_at(processes)
            if code != 0:
                checks.problems.append(f"bridge {run} exited {code} on SIGTERM")
        with TopicReader(bootstrap, topics.results, read_committed=exactly_once) as results:
            records = results.settle(1.0)
        with TopicReader(bootstrap, topics.dlq) as dlq:
            letters = dlq.settle(0.5)
    accepted = [v for v in values(records) if v["type"] == "message.accepted"]
    duplicated, missing = duplicates_and_missing([a["eventId"] for a in accepted], expected)
    others = len(records) - len(accepted)
    # A rebalance (a second process joining) may publish an event's accepted record
    # twice (at-least-once; same message, which check_sandbox proves sent once).
    if processes == 1 and duplicated:
        checks.problems.append(f"bridge {run}: {duplicated} events accepted twice")
    if not complete or missing or others or letters:
        checks.problems.append(
            f"bridge {run}: {len(accepted)} accepted records for {count} events "
            f"({missing} missing, {duplicated} duplicated, {others} of other types), "
            f"{len(letters)} dead letters"
        )
    if assigned is None or not records:
        raise BenchError(f"bridge {run}: no assignment logged or no record read")
    if any(r.timestamp_type != LOG_APPEND_TIME_TYPE for r in records):
        raise BenchError("the results topic does not stamp LogAppendTime")
    appended = [r.timestamp / 1000 for r in records if r.timestamp / 1000 >= assigned]
    finished = max(appended)
    rate = len(appended) / (finished - assigned)
    detail = {"bridge_seconds": round(finished - assigned, 2), "bridge_api_retries": retries,
              "timed_events": len(appended), "duplicated_records": duplicated,
              **cores_between(samples, assigned, finished)}  # fmt: skip
    return rate, detail


# -- the naive bridge -------------------------------------------------------------------


def naive_round(
    bootstrap: str, sandbox: SandboxHandle, args: argparse.Namespace, checks: Checks
) -> float:
    """Events/s of a poll-one, send, commit-each loop over ``args.naive_events`` events."""
    run = run_id()
    events = [notify_event(run, i) for i in range(args.naive_events)]
    checks.runs[run] = args.naive_events
    with fresh_topics(bootstrap, "naive", args.partitions) as topics:
        produce_events(bootstrap, topics.notify, events)
        consumer = KafkaConsumer(
            topics.notify,
            bootstrap_servers=bootstrap,
            group_id=topics.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
        )
        client = httpx.Client(
            base_url=sandbox.url,
            headers={"Authorization": f"Bearer {sandbox.test_key}"},
            timeout=10,
        )
        sent, started = 0, 0.0
        deadline = time.monotonic() + args.timeout
        try:
            while sent < args.naive_events and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500, max_records=1).values():
                    for record in batch:
                        if not sent:
                            started = time.time()
                        event = json.loads(record.value)
                        body = {
                            "fromPhoneId": SEED.phone_id,
                            "to": event["to"],
                            "content": event["content"],
                        }
                        client.post("/v1/messages/send", json=body).raise_for_status()
                        consumer.commit()
                        sent += 1
            finished = time.time()
        finally:
            client.close()
            consumer.close(autocommit=False)
    if sent < args.naive_events:
        checks.problems.append(f"naive {run}: sent {sent} of {args.naive_events} events")
    return sent / (finished - started) if sent > 1 else 0.0


# -- the raw concurrent client ----------------------------------------------------------


def raw_round(
    sandbox: SandboxHandle, args: argparse.Namespace, checks: Checks, pools: int
) -> float:
    """Sends/s of ``CONCURRENCY`` tasks posting through ``pools`` ``httpx.AsyncClient``s
    that share the connections evenly (no Kafka)."""
    run = run_id()
    per_pool = CONCURRENCY // pools

    async def measure() -> tuple[float, int]:
        clients = raw_clients(sandbox, pools)
        acked = 0
        stop_at = time.monotonic() + args.raw_warmup + args.raw_duration

        async def loop(task: int) -> None:
            nonlocal acked
            client, n = clients[task % pools], 0
            while time.monotonic() < stop_at:
                body = {
                    "fromPhoneId": SEED.phone_id,
                    "to": f"+1555{7_012_345 + n % 1000:07d}",
                    "content": f"raw {run}",
                    "idempotencyKey": f"raw-{run}-{task}-{n}",
                }
                response = await client.post("/v1/messages/send", json=body)
                response.raise_for_status()
                response.json()
                acked += 1
                n += 1

        tasks = [asyncio.create_task(loop(t)) for t in range(pools * per_pool)]
        await asyncio.sleep(args.raw_warmup)
        first, opened = acked, time.monotonic()
        await asyncio.sleep(args.raw_duration)
        last, closed = acked, time.monotonic()
        await asyncio.gather(*tasks)
        for client in clients:
            await client.aclose()
        return (last - first) / (closed - opened), acked

    rate, acked = asyncio.run(measure())
    checks.raw_runs[run] = acked
    return rate


def raw_clients(
    sandbox: SandboxHandle, pools: int, connections: int = CONCURRENCY
) -> list[httpx.AsyncClient]:
    """``pools`` ``httpx.AsyncClient``s sharing ``connections`` evenly."""
    per_pool = connections // pools
    limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
    return [
        httpx.AsyncClient(
            base_url=sandbox.url,
            headers={"Authorization": f"Bearer {sandbox.test_key}"},
            limits=limits,
            timeout=10,
        )
        for _ in range(pools)
    ]


# -- the hand-written pipeline ----------------------------------------------------------


def hand_written_round(
    bootstrap: str,
    sandbox: SandboxHandle,
    args: argparse.Namespace,
    checks: Checks,
    *,
    concurrency: int = CONCURRENCY,
    events: int | None = None,
) -> float:
    """Events/s of the pipeline a user would hand-write for the bridge's job, in this
    process, timed as the bridge is (from its assignment to the last ``message.accepted``
    appended), with ``concurrency`` sends in flight: see ``hand_written_batches``."""
    run = run_id()
    count = events or args.events
    batch = [notify_event(run, i) for i in range(count)]
    checks.runs[run] = count
    with fresh_topics(bootstrap, "hand", args.partitions) as topics:
        produce_events(bootstrap, topics.notify, batch)
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=topics.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        assigned: list[float] = []
        consumer.subscribe([topics.notify], listener=_Assigned(assigned))
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=25
        )
        try:
            asyncio.run(
                hand_written_batches(consumer, producer, sandbox, topics, args, concurrency, count)
            )
        finally:
            producer.close()
            consumer.close(autocommit=False)
        with TopicReader(bootstrap, topics.results) as results:
            records = results.settle(1.0)
    duplicated, missing = duplicates_and_missing(
        [v["eventId"] for v in values(records)], [e["eventId"] for e in batch]
    )
    if duplicated or missing:
        checks.problems.append(f"hand-written {run}: {missing} missing, {duplicated} repeated")
    if not assigned or not records:
        raise BenchError(f"hand-written {run}: never assigned or no record read")
    finished: float = max(r.timestamp for r in records) / 1000
    return len(records) / (finished - assigned[0])


async def hand_written_batches(
    consumer: KafkaConsumer,
    producer: KafkaProducer,
    sandbox: SandboxHandle,
    topics: TopicSet,
    args: argparse.Namespace,
    concurrency: int,
    events: int,
) -> None:
    """Until every event is done: poll a batch (up to 500, or ``concurrency``), send it
    with ``concurrency`` tasks over raw httpx (the raw baseline's best layout:
    connections per client as in ``max(args.raw_pools)`` clients of ``CONCURRENCY``),
    produce each accepted send's result and correlation records (acks=all, idempotent,
    linger 25 ms, as the bridge's), flush, commit. No validation, models, retries, rate
    limit or per-record commit order: only what the job needs."""
    per_client = CONCURRENCY // max(args.raw_pools)
    clients = raw_clients(sandbox, concurrency // per_client, concurrency)

    async def send(record: Any, client: httpx.AsyncClient) -> None:
        event = json.loads(record.value)
        body = {"fromPhoneId": SEED.phone_id, "to": event["to"], "content": event["content"],
                "idempotencyKey": event["eventId"]}  # fmt: skip
        response = await client.post("/v1/messages/send", json=body)
        response.raise_for_status()
        message = response.json()["data"]
        result = {"type": "message.accepted", "eventId": event["eventId"],
                  "messageId": message["id"], "status": message["status"],
                  "metadata": event["metadata"]}  # fmt: skip
        correlation = {"eventId": event["eventId"], "metadata": event["metadata"]}
        producer.send(topics.results, key=record.key, value=json.dumps(result).encode())
        producer.send(
            topics.correlation, key=message["id"].encode(), value=json.dumps(correlation).encode()
        )

    async def worker(index: int, batch: Iterator[Any]) -> None:
        client = clients[index % len(clients)]
        for record in batch:
            await send(record, client)

    done = 0
    deadline = time.monotonic() + args.timeout
    try:
        while done < events and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=200, max_records=max(500, concurrency))
            batch = [record for records in polled.values() for record in records]
            if not batch:
                continue
            shared = iter(batch)
            await asyncio.gather(*(worker(i, shared) for i in range(concurrency)))
            producer.flush()
            consumer.commit()
            done += len(batch)
    finally:
        for client in clients:
            await client.aclose()


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes the moment the hand-written pipeline's consumer got its partitions."""

    def __init__(self, moments: list[float]) -> None:
        self._moments = moments

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._moments.append(time.time())

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass


# -- the sandbox's view -----------------------------------------------------------------


def check_sandbox(sandbox: SandboxHandle, checks: Checks) -> None:
    """Exactly one message per event of every run; raw runs: as many as acknowledged."""
    per_content: Counter[str] = Counter()
    for message in sandbox.admin.messages():
        per_content[message.get("content") or ""] += 1
    for run, count in checks.runs.items():
        markers = [f"bench {run} {i}" for i in range(count)]
        duplicated, missing = duplicates_and_missing(
            (c for c in per_content.elements() if c.startswith(f"bench {run} ")), markers
        )
        extra = sum(n for c, n in per_content.items() if c.startswith(f"bench {run} ")) - count
        if duplicated or missing:
            checks.problems.append(
                f"sandbox, run {run}: {missing} events never sent, {duplicated} sent more "
                f"than once ({extra:+d} messages)"
            )
    for run, acked in checks.raw_runs.items():
        held = per_content[f"raw {run}"]
        if held != acked:
            checks.problems.append(f"raw run {run}: {acked} sends acknowledged, {held} held")


# -- scale-out on one host --------------------------------------------------------------


def scale_out(
    bootstrap: str,
    sandbox: SandboxHandle,
    args: argparse.Namespace,
    checks: Checks,
    params: dict[str, Any],
) -> None:
    """``consume --processes N`` against one process, A-B-B-A over ``--scale-events``."""
    if not args.scale_processes:
        return
    many = args.scale_processes
    details: dict[int, list[dict[str, Any]]] = {1: [], many: []}

    def run(name: str) -> float:
        processes = int(name)
        rate, detail = bridge_round(
            bootstrap,
            sandbox,
            args,
            checks,
            events=args.scale_events,
            processes=processes,
            produce_when_settled=True,
        )
        details[processes].append(detail)
        print(f"    bridge, {processes} process(es): {rate:,.1f} events/s", flush=True)
        return rate

    rates = alternate(args.rounds, ["1", str(many)], run)
    emit(
        f"bridge_throughput_near_limit_{many}_processes",
        figure=statistics.mean(rates[str(many)]),
        baseline=statistics.mean(rates["1"]),
        unit="events/s",
        target=SCALE_TARGETS.get(many, 0.8 * many),
        params={
            **params,
            "events": args.scale_events,
            "bridge_rounds": [round(r, 1) for r in rates[str(many)]],
            "one_process_rounds": [round(r, 1) for r in rates["1"]],
            **per_run(details[many], *RUN_DETAILS),
            **per_run(details[1], *CPU_DETAILS, prefix="one_process_"),
            "figure": f"consume --processes {many}: the events produced once all {many} had "
            "partitions, from the start of their production to the last appended (mean)",
            "baseline": "the same, one process (mean)",
            "machine_note": "the sandbox and the broker share the 2 CPUs",
        },
    )


def per_run(details: list[dict[str, Any]], *keys: str, prefix: str = "") -> dict[str, list[Any]]:
    """``keys`` of every run's details, one list each (runs without a key are left out)."""
    return {f"{prefix}{key}": [d[key] for d in details if key in d] for key in keys}


# -- main -------------------------------------------------------------------------------


def phase(
    latency: float,
    bootstrap: str,
    sandbox: SandboxHandle,
    args: argparse.Namespace,
    checks: Checks,
) -> None:
    raw = {f"raw_{p}x{CONCURRENCY // p}": p for p in args.raw_pools}
    variants = (
        ["bridge", "naive", "exactly_once"] if latency > 0 else ["bridge", "hand_written", *raw]
    )
    details: list[dict[str, Any]] = []

    def run(name: str) -> float:
        if name == "bridge":
            rate, detail = bridge_round(bootstrap, sandbox, args, checks)
            details.append(detail)
        elif name == "exactly_once":
            rate, _ = bridge_round(bootstrap, sandbox, args, checks, exactly_once=True)
        elif name == "naive":
            rate = naive_round(bootstrap, sandbox, args, checks)
        elif name == "hand_written":
            rate = hand_written_round(bootstrap, sandbox, args, checks)
        else:
            rate = raw_round(sandbox, args, checks, raw[name])
        print(f"    {name}: {rate:,.1f} events/s", flush=True)
        return rate

    rates = alternate(args.rounds, variants, run)

    params: dict[str, Any] = {
        "events": args.events,
        "partitions": args.partitions,
        "keys": "one per event",
        "latency_s": latency,
        "bridge_concurrency": CONCURRENCY,
        "bridge_rate_limiter": "off",
        "producer_linger_ms": "default" if args.linger is None else args.linger,
        "rounds": args.rounds,
        "bridge_rounds": [round(r, 1) for r in rates["bridge"]],
        **per_run(details, "bridge_seconds", "bridge_api_retries", *CPU_DETAILS),
        "figure": "events from assignment to the last message.accepted appended (mean)",
        "sandbox": "own process, rate limit off",
    }
    figure = statistics.mean(rates["bridge"])
    if latency > 0:
        for name in ("bridge", "exactly_once"):
            within_bound(name, rates[name], CONCURRENCY / latency, checks)
        emit(
            f"bridge_throughput_latency_{round(latency * 1000)}ms",
            figure=figure,
            baseline=statistics.mean(rates["naive"]),
            unit="events/s",
            target=NAIVE_TARGET,
            params={
                **params,
                "baseline": "naive kafka-python loop: poll 1, httpx.Client.post, commit each "
                "(mean); publishes no result records",
                "naive_events": args.naive_events,
                "naive_rounds": [round(r, 2) for r in rates["naive"]],
            },
        )
        emit(
            f"bridge_throughput_latency_{round(latency * 1000)}ms_vs_bound",
            figure=figure,
            baseline=CONCURRENCY / latency,
            unit="events/s",
            target=BOUND_TARGET,
            params={**params, "baseline": f"the bound: concurrency / latency = "
                    f"{CONCURRENCY} / {latency:g} s"},
        )  # fmt: skip
        for concurrency in args.sweep:
            sweep(concurrency, latency, bootstrap, sandbox, args, checks, params)
        emit(
            f"bridge_exactly_once_latency_{round(latency * 1000)}ms",
            figure=statistics.mean(rates["exactly_once"]),
            baseline=figure,
            unit="events/s",
            target=EXACTLY_ONCE_TARGET,
            params={
                **params,
                "figure": "--exactly-once: events from assignment to the last committed "
                "message.accepted appended, read as read_committed (mean)",
                "baseline": "the same bridge, at-least-once (mean)",
                "exactly_once_rounds": [round(r, 1) for r in rates["exactly_once"]],
            },
        )
    else:
        scale_out(bootstrap, sandbox, args, checks, params)
        emit(
            "bridge_throughput_near_limit",
            figure=figure,
            baseline=max(max(rates[name]) for name in raw),
            unit="events/s",
            target=RAW_TARGET,
            params={
                **params,
                "baseline": f"raw httpx.AsyncClient, {CONCURRENCY} tasks and connections, no "
                f"Kafka: best round of any pool split (pools x connections), "
                f"{args.raw_duration:g} s after {args.raw_warmup:g} s warm-up",
                **{f"{name}_rounds": [round(r, 1) for r in rates[name]] for name in raw},
            },
        )
        emit(
            "bridge_throughput_near_limit_vs_hand_written",
            figure=figure,
            baseline=statistics.mean(rates["hand_written"]),
            unit="events/s",
            target=HAND_WRITTEN_TARGET,
            params={
                **params,
                "baseline": "the pipeline a user would hand-write for the same job, timed as "
                "the bridge: kafka-python batches of up to 500, sent by "
                f"{CONCURRENCY} tasks over {max(args.raw_pools)} raw httpx clients, result "
                "and correlation records produced (acks=all), flush, commit (mean)",
                "hand_written_rounds": [round(r, 1) for r in rates["hand_written"]],
            },
        )


@contextmanager
def added_latency(sandbox: SandboxHandle, latency: float) -> Iterator[None]:
    """The sandbox adds ``latency`` to every send meanwhile (none for 0)."""
    if latency <= 0:
        yield
        return
    fault = sandbox.admin.inject_latency(latency, method="POST", path="/v1/messages/send")
    try:
        yield
    finally:
        sandbox.admin.remove_fault(fault["id"])


def within_bound(name: str, rates: list[float], bound: float, checks: Checks) -> None:
    """A run faster than ``concurrency / latency`` did not have the latency it claims."""
    for rate in rates:
        if rate > bound * BOUND_SLACK:
            checks.problems.append(
                f"{name}: {rate:,.1f} events/s is above its bound of {bound:,.1f}: the "
                "sandbox's added latency was not in effect"
            )


def sweep(
    concurrency: int,
    latency: float,
    bootstrap: str,
    sandbox: SandboxHandle,
    args: argparse.Namespace,
    checks: Checks,
    params: dict[str, Any],
) -> None:
    """The bridge at ``--concurrency`` ``concurrency``, against its bound and against the
    hand-written pipeline with as many sends in flight (what this machine allows).

    Each run is as long at its bound as the default one is at its own (``--events``
    scaled by ``concurrency / CONCURRENCY``): in a shorter one the first waves, slowed
    by setting up connections (raw httpx itself reaches half the bound there), would
    weigh more."""
    events = round(args.events * concurrency / CONCURRENCY)

    def run(name: str) -> float:
        if name == "bridge":
            rate = bridge_round(
                bootstrap, sandbox, args, checks, concurrency=concurrency, events=events
            )[0]
        else:
            rate = hand_written_round(
                bootstrap, sandbox, args, checks, concurrency=concurrency, events=events
            )
        print(f"    {name} at concurrency {concurrency}: {rate:,.1f} events/s", flush=True)
        return rate

    rates = alternate(args.rounds, ["bridge", "hand_written"], run)
    for variant, rounds in rates.items():
        within_bound(f"{variant} at {concurrency}", rounds, concurrency / latency, checks)
    name = f"bridge_throughput_latency_{round(latency * 1000)}ms_concurrency_{concurrency}"
    swept = {**params, "events": events, "bridge_concurrency": concurrency,
             "bridge_rounds": [round(r, 1) for r in rates["bridge"]],
             "hand_written_rounds": [round(r, 1) for r in rates["hand_written"]]}  # fmt: skip
    figure = statistics.mean(rates["bridge"])
    emit(
        name,
        figure=figure,
        baseline=concurrency / latency,
        unit="events/s",
        target=BOUND_TARGET,
        params={**swept, "baseline": f"the bound: {concurrency} / {latency:g} s"},
    )
    emit(
        f"{name}_vs_hand_written",
        figure=figure,
        baseline=statistics.mean(rates["hand_written"]),
        unit="events/s",
        target=HAND_WRITTEN_TARGET,
        params={**swept, "baseline": "the hand-written pipeline (see near the limit) with "
                f"{concurrency} tasks over raw httpx clients of "
                f"{CONCURRENCY // max(args.raw_pools)} connections (mean)"},
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--latency", type=float, nargs="+", default=[0.1, 0.0], help="added send latencies (s)"
    )
    parser.add_argument("--events", type=int, default=2000, help="notify events per bridge run")
    parser.add_argument("--naive-events", type=int, default=150, help="events per naive run")
    parser.add_argument("--partitions", type=int, default=4, help="notify topic partitions")
    parser.add_argument("--rounds", type=int, default=2, help="runs per variant (A-B-B-A)")
    parser.add_argument("--raw-duration", type=float, default=3.0, help="raw client window (s)")
    parser.add_argument("--raw-warmup", type=float, default=0.5, help="raw client warm-up (s)")
    parser.add_argument(
        "--raw-pools",
        type=int,
        nargs="+",
        default=[1, 8],
        help="raw baseline variants: the concurrency split over this many httpx clients",
    )
    parser.add_argument(
        "--sweep",
        type=int,
        nargs="*",
        default=[128, 512],
        help="further --concurrency values run at each latency > 0, against their bounds",
    )
    parser.add_argument(
        "--scale-processes",
        type=int,
        default=2,
        help="at latency 0, consume --processes N against one process (0: skip)",
    )
    parser.add_argument(
        "--scale-events", type=int, default=8000, help="notify events per scale-out run"
    )
    parser.add_argument(
        "--linger",
        type=int,
        help="the bridge runs' --producer-linger-ms (default: the bridge's own)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up a run after (s)")
    args = parser.parse_args()

    checks = Checks()
    started = time.monotonic()
    with broker() as bootstrap, start_sandbox_process(rate_limit=0) as sandbox:
        for latency in args.latency:
            print(f"latency {latency:g} s:", flush=True)
            with added_latency(sandbox, latency):
                phase(latency, bootstrap, sandbox, args, checks)
        check_sandbox(sandbox, checks)
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return fail(checks.problems)


if __name__ == "__main__":
    sys.exit(main())
