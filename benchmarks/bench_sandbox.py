"""How many sends a second the sandbox sustains on loopback, against a trivial baseline.

Two servers, each in its own subprocess on the same stack (uvicorn via
``chatmaid.sandbox.server.make_server``: uvloop and httptools when installed, no access
log): the sandbox with rate limiting off, and a Starlette app whose only route answers
a fixed JSON 201. One load generator (this process) drives each in turn with the same
concurrency: raw asyncio HTTP/1.1 keep-alive connections (httpx's per-request cost
would make the generator the bottleneck on a small machine), warm-up first, then a
measured window; rounds alternate A-B-B-A and the means are compared.

Prints one JSON line and a short human line. Exits non-zero only if a correctness check
fails (a non-201 answer, or the sandbox not holding exactly the messages it
acknowledged), never because of speed.

    .venv/bin/python benchmarks/bench_sandbox.py [--duration 5] [--concurrency 32] [--rounds 2]
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
from collections.abc import Callable
from urllib.parse import urlsplit

from chatmaid.sandbox import SEED, start_sandbox_process

from _baseline import fixed_endpoint
from _report import emit, fail

TARGET_RATE = 1000.0
TARGET_RATIO = 0.3
FIXED_BODY = json.dumps(
    {"success": True, "data": {"id": "msg_abc123def456", "status": "sent"}}
).encode()


# -- the load generator -----------------------------------------------------------------


class Load:
    """Counts answers by status while workers keep ``concurrency`` requests in flight."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.done = 0


def send_request(host: str, port: int, connection: str) -> Callable[[int], bytes]:
    """Request bytes for send number ``n`` on a connection (a unique idempotency key)."""
    head = (
        f"POST /v1/messages/send HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {SEED.test_key}\r\nContent-Type: application/json\r\n"
    )

    def build(n: int) -> bytes:
        body = json.dumps(
            {
                "fromPhoneId": SEED.phone_id,
                "to": "+15557654321",
                "content": "benchmark",
                "idempotencyKey": f"bench-{connection}-{n}",
            }
        ).encode()
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    return build


async def worker(host: str, port: int, connection: str, load: Load, stop_at: float) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    build = send_request(host, port, connection)
    n = 0
    while time.monotonic() < stop_at:
        writer.write(build(n))
        n += 1
        head = await reader.readuntil(b"\r\n\r\n")
        start = head.lower().find(b"content-length:") + len(b"content-length:")
        length = int(head[start : head.find(b"\r\n", start)])
        await reader.readexactly(length)
        load.statuses[int(head[9:12])] += 1
        load.done += 1
    writer.close()
    await writer.wait_closed()


async def drive(url: str, concurrency: int, warmup: float, duration: float) -> tuple[float, Load]:
    """Sends a second over the measured window, and every answer counted."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    load = Load()
    run = uuid.uuid4().hex[:12]  # idempotency keys unique across runs, so every send is new
    stop_at = time.monotonic() + warmup + duration
    workers = [
        asyncio.create_task(worker(host, port, f"{run}-{c}", load, stop_at))
        for c in range(concurrency)
    ]
    await asyncio.sleep(warmup)
    first, started = load.done, time.monotonic()
    await asyncio.sleep(duration)
    last, elapsed = load.done, time.monotonic() - started
    await asyncio.gather(*workers)
    return (last - first) / elapsed, load


def run_load(url: str, args: argparse.Namespace) -> tuple[float, Load]:
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is in the sandbox extra
        pass
    coroutine = drive(url, args.concurrency, args.warmup, args.duration)
    if loop_factory is None:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coroutine)


# -- main -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per server (A-B-B-A)")
    args = parser.parse_args()

    # Rounds in A-B-B-A order, both servers up throughout, so drift on a busy machine
    # (other processes, a growing sandbox heap) weighs on both alike.
    rates: dict[str, list[float]] = {"sandbox": [], "baseline": []}
    statuses: dict[str, Counter[int]] = {"sandbox": Counter(), "baseline": Counter()}
    with (
        start_sandbox_process(rate_limit=0) as sandbox,
        fixed_endpoint("/v1/messages/send", 201, FIXED_BODY) as baseline_url,
    ):
        urls = {"sandbox": sandbox.url, "baseline": baseline_url}
        for round_ in range(args.rounds):
            order = ("sandbox", "baseline") if round_ % 2 == 0 else ("baseline", "sandbox")
            for name in order:
                rate, load = run_load(urls[name], args)
                rates[name].append(rate)
                statuses[name].update(load.statuses)
        held = len(sandbox.admin.messages()) - 1  # minus the seeded example message

    problems: list[str] = []
    acknowledged = statuses["sandbox"][201]
    for name, counts in statuses.items():
        if set(counts) != {201}:
            problems.append(f"{name} answered {dict(counts)}, expected only 201")
    if held != acknowledged:
        problems.append(f"sandbox acknowledged {acknowledged} sends but holds {held}")
    figure, baseline = (statistics.mean(rates[name]) for name in ("sandbox", "baseline"))
    emit(
        "sandbox_send_rate",
        figure=figure,
        baseline=baseline,
        unit="sends/s",
        target=TARGET_RATIO,
        params={
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rate_limit": "off",
            "server": "uvicorn (uvloop, httptools when installed), one process each",
            "load_generator": "raw asyncio HTTP/1.1 keep-alive, one process",
            "baseline": "Starlette route answering a fixed JSON 201",
            "rounds": args.rounds,
            "sandbox_rounds": [round(r) for r in rates["sandbox"]],
            "baseline_rounds": [round(r) for r in rates["baseline"]],
            "acknowledged": acknowledged,
            "held": held,
            "absolute_target_sends_per_s": TARGET_RATE,
            "absolute_target_met": figure >= TARGET_RATE,
        },
    )
    return fail(problems)


if __name__ == "__main__":
    sys.exit(main())
