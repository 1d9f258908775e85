"""The inbox page with 5,000 messages held: how fast it loads, and what it costs the API.

One sandbox subprocess (rate limiting off) is filled with 5,000 messages (test and
live keys, 50 recipients, some failing), then:

- load: Debian's chromium (Playwright, headless) opens ``/`` until the page has drawn
  every conversation, against the same page on a fresh sandbox holding only the seed;
- responsiveness: with the page open, a search for one idempotency key until the
  page shows only that message, and a new send until the page shows it;
- cost: ``bench_sandbox``'s load generator measures sends a second with the page open
  (it polls the change feed while the sends pour in) and closed, rounds A-B-B-A.

Prints one JSON line per result and a human line. Exits non-zero only if a check
fails (a non-201 answer, the page not showing what the sandbox holds), never because
of speed; without /usr/bin/chromium it says so and measures nothing.

    .venv/bin/python benchmarks/bench_sandbox_page.py [--messages 5000] [--duration 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from chatmaid.sandbox import SEED, SandboxHandle, start_sandbox_process

from _report import alternate, emit, fail
from bench_sandbox import run_load

CHROMIUM = Path("/usr/bin/chromium")
TARGET_RATIO = 0.9  # sends a second with the page open, against closed: within noise
LOAD_TARGET_RATIO = 20.0  # 5,000 messages against the seed's one, in load time
RECIPIENTS = 50
# Checked at every animation frame: Playwright's own waits poll up to 500 ms apart.
SHOWN = (
    "t => [...document.querySelectorAll('.thread-item .preview')].some(e => e.textContent === t)"
)


def fill(sandbox: SandboxHandle, count: int) -> None:
    """``count`` messages: nine in ten by the test key, one in 25 to a failing number."""
    with (
        sandbox.client(requests_per_minute=None) as test,
        sandbox.client(sandbox.live_key, requests_per_minute=None) as live,
    ):
        for n in range(count):
            client = live if n % 10 == 0 else test
            to = "+1555000" + ("0000" if n % 25 == 0 else f"{1000 + n % RECIPIENTS}")
            client.send_message(
                from_phone=SEED.phone_id,
                to=to,
                content=f"Alert {n}: KPI moved",
                idempotency_key=f"fill-{n}",
            )


def open_page(browser: Browser, url: str, threads: int) -> tuple[Page, float]:
    """A new page on the inbox, and the seconds until it drew ``threads`` conversations."""
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    started = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_function(
        "n => document.body.dataset.ready && document.querySelectorAll('.thread-item').length >= n",
        arg=threads,
        timeout=60_000,
    )
    return page, time.perf_counter() - started


def median_load(browser: Browser, url: str, threads: int, times: int = 3) -> float:
    loads = []
    for _ in range(times):
        page, seconds = open_page(browser, url, threads)
        page.close()
        loads.append(seconds)
    return statistics.median(loads)


def search_latency(page: Page, key: str) -> float:
    """Seconds from typing an idempotency key to the page showing only its message."""
    started = time.perf_counter()
    page.fill("input[name=q]", key)
    page.wait_for_function(
        "() => document.querySelectorAll('.bubble').length === 1", polling="raf", timeout=10_000
    )
    seconds = time.perf_counter() - started
    page.fill("input[name=q]", "")
    return seconds


def send_latency(sandbox: SandboxHandle, page: Page, times: int = 5) -> float:
    """Median seconds from a send's answer to the page listing it atop its conversation."""
    latencies = []
    with sandbox.client(requests_per_minute=None) as client:
        for n in range(times):
            content = f"ping {n}"
            client.send_message(from_phone=SEED.phone_id, to="+15557654321", content=content)
            started = time.perf_counter()
            page.wait_for_function(SHOWN, arg=content, polling="raf", timeout=10_000)
            latencies.append(time.perf_counter() - started)
    return statistics.median(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages held")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant (A-B-B-A)")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(
            f"bench_sandbox_page: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr
        )
        return 0

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        with start_sandbox_process(rate_limit=0) as seed_only:
            seed_load = median_load(browser, seed_only.url, 1)
        with start_sandbox_process(rate_limit=0, live_delay=0.5) as sandbox:
            fill(sandbox, args.messages)
            threads = len({(m["from"], m["to"]) for m in sandbox.admin.messages()})
            load = median_load(browser, sandbox.url, threads)
            page, _ = open_page(browser, sandbox.url, threads)
            searched = search_latency(page, f"fill-{args.messages // 2}")
            appeared = send_latency(sandbox, page)
            held = len(sandbox.admin.messages())
            shown = page.evaluate("() => document.querySelectorAll('.thread-item').length")
            if shown < threads:
                problems.append(f"the page shows {shown} conversations, expected {threads}")
            page.close()
            rates, statuses = measure_cost(browser, sandbox, args)
        browser.close()

    acknowledged = sum(statuses.values())
    if set(statuses) != {201}:
        problems.append(f"sandbox answered {dict(statuses)}, expected only 201")
    emit(
        "sandbox_inbox_load",
        figure=load * 1000,
        baseline=seed_load * 1000,
        unit="ms",
        target=LOAD_TARGET_RATIO,
        higher_is_better=False,
        params={
            "messages_held": held,
            "conversations": threads,
            "baseline": "the same page on a sandbox holding only the seed's message",
            "browser": "Debian chromium, headless, via Playwright",
            "search_by_key_ms": round(searched * 1000, 1),
            "send_to_page_ms_median": round(appeared * 1000, 1),
        },
    )
    open_rate, closed_rate = (statistics.mean(rates[name]) for name in ("open", "closed"))
    emit(
        "sandbox_send_rate_page_open",
        figure=open_rate,
        baseline=closed_rate,
        unit="sends/s",
        target=TARGET_RATIO,
        params={
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "open_rounds": [round(r) for r in rates["open"]],
            "closed_rounds": [round(r) for r in rates["closed"]],
            "baseline": "the same sandbox and load with no page open",
            "messages_held_at_start": held,
            "acknowledged": acknowledged,
        },
    )
    return fail(problems)


def measure_cost(
    browser: Browser, sandbox: SandboxHandle, args: argparse.Namespace
) -> tuple[dict[str, list[float]], Counter[int]]:
    """Sends a second with the page open and closed, in A-B-B-A rounds, and every answer."""
    statuses: Counter[int] = Counter()

    def run(variant: str) -> float:
        page = open_page(browser, sandbox.url, 1)[0] if variant == "open" else None
        # In a thread: Playwright's sync API holds this thread's event loop.
        with ThreadPoolExecutor(1) as pool:
            rate, load = pool.submit(run_load, sandbox.url, args).result()
        statuses.update(load.statuses)
        if page is not None:
            page.close()
        return rate

    return alternate(args.rounds, ("closed", "open"), run), statuses


if __name__ == "__main__":
    sys.exit(main())
