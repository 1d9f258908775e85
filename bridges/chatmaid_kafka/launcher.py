"""``chatmaid-bridge``'s entry point: the CLI, or which extra to install when it is missing.

The bridge's dependencies come with ``chatmaid-connectors[kafka]``; without them the CLI
cannot be imported, and a bare ``ModuleNotFoundError`` would not say what to do.
"""

from __future__ import annotations

import sys

INSTALL_HINT = "pip install 'chatmaid-connectors[kafka]'"
# The top-level modules the kafka extra brings (by import name).
KAFKA_EXTRA_MODULES = frozenset(
    {"kafka", "pydantic_settings", "starlette", "uvicorn", "prometheus_client", "crc32c"}
)


def main() -> int:
    """Run ``chatmaid-bridge``; exit 2 naming the extra when one of its modules is missing."""
    try:
        from .cli import main as run_cli
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in KAFKA_EXTRA_MODULES:
            raise
        print(
            f"chatmaid-bridge: the Python module {missing!r} is missing: the bridge needs "
            f"the kafka extra; install it with: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    return run_cli()


if __name__ == "__main__":
    sys.exit(main())
