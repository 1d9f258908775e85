"""``chatmaid-bridge`` without the kafka extra says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A process in which one module of the extra cannot be imported, as without the extra.
WITHOUT = (
    "import sys; sys.modules[{module!r}] = None; "
    "from chatmaid_kafka.launcher import main; sys.exit(main())"
)


@pytest.mark.parametrize("module", ["kafka", "pydantic_settings", "prometheus_client"])
def test_a_missing_extra_is_named_with_the_command_that_installs_it(module: str) -> None:
    process = subprocess.run(  # noqa: S603
        [sys.executable, "-c", WITHOUT.format(module=module), "consume"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 2
    assert f"the Python module {module!r} is missing" in process.stderr
    assert "pip install 'chatmaid-connectors[kafka]'" in process.stderr
    assert "Traceback" not in process.stderr


def test_with_the_extra_the_cli_runs() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "chatmaid_kafka.launcher", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert "consume" in process.stdout
