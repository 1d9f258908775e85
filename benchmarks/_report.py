"""What every benchmark prints: one JSON line a result, and a short human line.

A figure is always compared with a baseline measured in the same run on the same
machine; the ratio is what to read (these machines are shared and noisy).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any


def machine() -> str:
    """A short description of the machine, for the README table."""
    return f"{os.cpu_count()} CPU, {platform.machine()}, Python {platform.python_version()}"


def emit(
    name: str,
    *,
    figure: float,
    baseline: float,
    unit: str,
    target: float,
    params: dict[str, Any],
    higher_is_better: bool = True,
    ceiling: float | None = None,
) -> dict[str, Any]:
    """Print the result's JSON line and a human line; return the result. ``ceiling``: a
    ratio above it misses the bar too (a rate that must reach a limit, not pass it)."""
    ratio = figure / baseline if baseline else 0.0
    met = ratio >= target if higher_is_better else ratio <= target
    met = met and (ceiling is None or ratio <= ceiling)
    result = {
        "name": name,
        "figure": round(figure, 3),
        "baseline": round(baseline, 3),
        "ratio": round(ratio, 3),
        "unit": unit,
        "target_ratio": target,
        "ceiling_ratio": ceiling,
        "higher_is_better": higher_is_better,
        "met": met,
        "params": {**params, "machine": machine()},
    }
    print(json.dumps(result), flush=True)
    comparison = ">=" if higher_is_better else "<="
    bar = f"{comparison} {target}" + ("" if ceiling is None else f", <= {ceiling}")
    print(
        f"  {name}: {figure:,.1f} vs baseline {baseline:,.1f} {unit} -> ratio {ratio:.2f} "
        f"(bar {bar}: {'met' if met else 'MISSED'})",
        flush=True,
    )
    return result


def alternate(
    rounds: int, variants: Sequence[str], run: Callable[[str], float]
) -> dict[str, list[float]]:
    """Run each variant ``rounds`` times in A-B-B-A order, so drift weighs on all alike."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(rounds):
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in order:
            results[name].append(run(name))
    return results


def fail(problems: list[str]) -> int:
    """Report correctness problems on stderr; the exit code a benchmark returns."""
    for problem in problems:
        print(f"CORRECTNESS: {problem}", file=sys.stderr)
    return 1 if problems else 0
