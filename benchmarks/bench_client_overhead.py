"""Core client overhead: sends per second through the Chatmaid clients versus bare httpx.

Both post the same JSON (with a fresh idempotency key each) to the same sandbox, at the
same concurrency: threads sharing one ``ChatmaidClient`` versus threads sharing one
``httpx.Client``; asyncio tasks sharing one ``AsyncChatmaidClient`` versus the best of
one ``httpx.AsyncClient`` holding every connection and the same connections split over
``AsyncClient``s of 4 (the layout the Chatmaid clients use: httpcore's pool does work
per request that grows with its size). The Chatmaid clients run their whole path (validation, retry
machinery, response models) with the rate limiter off. The sandbox runs in its own
process with rate limiting off. Bar: a ratio of at least 0.85, sync and async.

Exits non-zero only when a correctness check fails (an error answer, or the sandbox
holding a different number of messages than were acknowledged).

    .venv/bin/python benchmarks/bench_client_overhead.py [--duration 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable

import httpx

from chatmaid import AsyncChatmaidClient, ChatmaidClient
from chatmaid.sandbox import SEED, SandboxHandle, start_sandbox_process

from _report import alternate, emit, fail

TARGET = 0.85
TO = "+15557654321"


def bare_body() -> dict[str, str]:
    return {
        "fromPhoneId": SEED.phone_id,
        "to": TO,
        "content": "benchmark",
        "idempotencyKey": f"bare-{uuid.uuid4().hex}",
    }


class Counter:
    """Acknowledged sends, counted across threads."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


def run_threads(send: Callable[[], None], threads: int, seconds: float, acked: Counter) -> float:
    """Sends a second with ``threads`` threads calling ``send`` for ``seconds``."""
    stop_at = time.monotonic() + seconds
    done = Counter()

    def loop() -> None:
        n = 0
        while time.monotonic() < stop_at:
            send()
            n += 1
        done.add(n)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    acked.add(done.value)
    return done.value / (time.monotonic() - started)


async def run_tasks(send: Callable[[], object], tasks: int, seconds: float) -> tuple[float, int]:
    stop_at = time.monotonic() + seconds
    counts = [0] * tasks

    async def loop(index: int) -> None:
        while time.monotonic() < stop_at:
            await send()  # type: ignore[misc]
            counts[index] += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(i) for i in range(tasks)))
    return sum(counts) / (time.monotonic() - started), sum(counts)


def measure_sync(
    sandbox: SandboxHandle, args: argparse.Namespace, acked: Counter
) -> dict[str, list[float]]:
    client = ChatmaidClient(SEED.test_key, base_url=sandbox.url, requests_per_minute=None)
    bare = httpx.Client(headers={"Authorization": f"Bearer {SEED.test_key}"})
    url = f"{sandbox.url}/v1/messages/send"

    def chatmaid_send() -> None:
        client.send_message(from_phone=SEED.phone_id, to=TO, content="benchmark")

    def bare_send() -> None:
        response = bare.post(url, json=bare_body())
        response.raise_for_status()
        response.json()

    sends = {"chatmaid": chatmaid_send, "httpx": bare_send}
    run_threads(bare_send, args.threads, 0.5, acked)  # warm-up: connections, caches
    try:
        return alternate(
            args.rounds,
            list(sends),
            lambda name: run_threads(sends[name], args.threads, args.duration, acked),
        )
    finally:
        client.close()
        bare.close()


def measure_async(
    sandbox: SandboxHandle, args: argparse.Namespace, acked: Counter
) -> dict[str, list[float]]:
    async def main() -> dict[str, list[float]]:
        headers = {"Authorization": f"Bearer {SEED.test_key}"}
        client = AsyncChatmaidClient(
            SEED.test_key,
            base_url=sandbox.url,
            requests_per_minute=None,
            max_connections=args.tasks,
        )
        bare = httpx.AsyncClient(headers=headers, limits=httpx.Limits(max_connections=args.tasks))
        split = [
            httpx.AsyncClient(headers=headers, limits=httpx.Limits(max_connections=4))
            for _ in range(max(1, args.tasks // 4))
        ]
        turn = itertools.cycle(split)
        url = f"{sandbox.url}/v1/messages/send"

        async def chatmaid_send() -> None:
            await client.send_message(from_phone=SEED.phone_id, to=TO, content="benchmark")

        async def bare_send() -> None:
            response = await bare.post(url, json=bare_body())
            response.raise_for_status()
            response.json()

        async def split_send() -> None:
            response = await next(turn).post(url, json=bare_body())
            response.raise_for_status()
            response.json()

        sends = {"chatmaid": chatmaid_send, "httpx": bare_send, "httpx_split": split_send}
        results: dict[str, list[float]] = {name: [] for name in sends}
        acked.add((await run_tasks(bare_send, args.tasks, 0.5))[1])  # warm-up
        for index in range(args.rounds):
            order = list(sends) if index % 2 == 0 else list(reversed(sends))
            for name in order:
                rate, count = await run_tasks(sends[name], args.tasks, args.duration)
                results[name].append(rate)
                acked.add(count)
        await client.aclose()
        for pool in [bare, *split]:
            await pool.aclose()
        return results

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per variant (A-B-B-A)")
    parser.add_argument("--threads", type=int, default=8, help="sync concurrency")
    parser.add_argument("--tasks", type=int, default=16, help="async concurrency")
    args = parser.parse_args()

    acked = Counter()
    problems: list[str] = []
    with start_sandbox_process(rate_limit=0) as sandbox:
        seeded = len(sandbox.admin.messages())
        flavours = {
            "client_overhead_sync": (measure_sync, {"threads": args.threads}),
            "client_overhead_async": (measure_async, {"tasks": args.tasks}),
        }
        for name, (measure, concurrency) in flavours.items():
            rates = measure(sandbox, args, acked)
            bare = {k: statistics.mean(v) for k, v in rates.items() if k != "chatmaid"}
            emit(
                name,
                figure=statistics.mean(rates["chatmaid"]),
                baseline=max(bare.values()),
                unit="sends/s",
                target=TARGET,
                params={
                    **concurrency,
                    "duration_s": args.duration,
                    "rounds": args.rounds,
                    "chatmaid_rounds": [round(r) for r in rates["chatmaid"]],
                    **{f"{k}_rounds": [round(r) for r in rates[k]] for k in bare},
                    "baseline": max(bare, key=bare.__getitem__),
                    "rate_limiter": "off",
                    "server": "chatmaid-sandbox in its own process, rate limit off",
                },
            )
        held = len(sandbox.admin.messages()) - seeded
    if held != acked.value:
        problems.append(f"{acked.value} sends were acknowledged but the sandbox holds {held}")
    return fail(problems)


if __name__ == "__main__":
    sys.exit(main())
