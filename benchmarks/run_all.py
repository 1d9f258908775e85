"""``make bench``: run every benchmark, then print their results as one table.

Each ``bench_*.py`` runs in its own process and prints JSON lines (see ``_report``);
this collects them, prints the table, and exits non-zero if any benchmark's
correctness check failed (never because of a speed figure).

    .venv/bin/python benchmarks/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _report import machine

HERE = Path(__file__).resolve().parent


def run(script: Path) -> tuple[int, list[dict[str, Any]], float]:
    """Run one benchmark, echoing its output; its exit code, results and duration."""
    print(f"\n== {script.name}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - our own scripts, by path
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True
    )
    results: list[dict[str, Any]] = []
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("{"):
            results.append(json.loads(line))
    return process.wait(), results, time.monotonic() - started


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table, as README shows it."""
    rows = [
        "| benchmark | figure | baseline | ratio | bar | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for result in results:
        direction = "<=" if result.get("higher_is_better") is False else ">="
        bar = f"{direction} {result.get('target_ratio')}"
        if result.get("ceiling_ratio") is not None:
            bar += f", <= {result['ceiling_ratio']}"
        rows.append(
            f"| {result['name']} | {result['figure']:,.1f} {result['unit']} | "
            f"{result['baseline']:,.1f} | {result['ratio']:.2f} | {bar} | "
            f"{'yes' if result.get('met') else 'NO'} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="bench_<NAME>.py to run")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    failed: list[str] = []
    collected: list[dict[str, Any]] = []
    started = time.monotonic()
    for script in scripts:
        code, results, seconds = run(script)
        collected += results
        print(f"   ({script.name}: {seconds:.0f}s, exit {code})", flush=True)
        if code != 0:
            failed.append(script.name)
    print(f"\n{time.strftime('%Y-%m-%d')}, {machine()}, {time.monotonic() - started:.0f}s\n")
    print(table(collected))
    for name in failed:
        print(f"FAILED correctness check: {name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
