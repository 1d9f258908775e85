"""Build the sdist and the wheel, check what they hold, and use the wheel as a user would.

The wheel is installed with only its ``airflow`` extra into a fresh venv (Airflow pinned
by ``requirements/airflow-lowest.txt``, as a constraints file pins it for a user); every
provider module must import there and ``airflow providers list`` must show the provider.

Usage: ``python scripts/check_package.py [--workdir DIR]`` (default: a temporary one).
Exits 1 with every problem found.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from email.parser import HeaderParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PINS = REPO / "requirements" / "airflow-lowest.txt"
CLASSIFIERS = ("Framework :: Apache Airflow", "Framework :: Apache Airflow :: Provider")
SDIST_FILES = ("LICENSE", "docs/airflow.md", "docs/package.md", "dags/chatmaid_kpi_alert.py")
# Relative Markdown links and images break on a package index's page.
RELATIVE_LINK = re.compile(r"\]\((?!https?://|#)[^)]*\)")

# Run inside the fresh venv: import every module the provider info names, and list it.
IN_VENV = """
import importlib, json, subprocess, sys
from chatmaid_airflow.get_provider_info import get_provider_info
info = get_provider_info()
modules = {m for kind in ("hooks", "operators", "sensors", "triggers")
           for entry in info[kind] for m in entry["python-modules"]}
modules |= {path.rpartition(".")[0] for path in info["notifications"] + info["extra-links"]}
modules |= {info["connection-types"][0]["hook-class-name"].rpartition(".")[0]}
for module in sorted(modules):
    importlib.import_module(module)
listed = subprocess.run([sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
                        capture_output=True, text=True, check=True).stdout
print(json.dumps({"modules": sorted(modules), "providers": json.loads(listed)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the build and the venv here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        problems = check(work)
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


def check(work: Path) -> list[str]:
    """Every problem of the built distributions and of the installed wheel."""
    started = time.monotonic()
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(REPO)])
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    problems = [*wheel_problems(wheel), *sdist_problems(sdist)]
    print(f"built {wheel.name} and {sdist.name} ({time.monotonic() - started:.0f} s)")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--clear", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "-c", str(PINS), f"{wheel}[airflow]"])
    env = {"AIRFLOW_HOME": str(work / "airflow-home"), "PATH": str(venv / "bin")}
    found = json.loads(run([str(python), "-c", IN_VENV], env=env).splitlines()[-1])
    problems += bridge_without_extra_problems(venv)
    providers = {p["package_name"]: p["version"] for p in found["providers"]}
    if "chatmaid-connectors" not in providers:
        problems.append(f"airflow providers list has no chatmaid-connectors: {sorted(providers)}")
    print(
        f"installed with [airflow] only; imported {len(found['modules'])} provider modules; "
        f"airflow providers list: chatmaid-connectors {providers.get('chatmaid-connectors')} "
        f"({time.monotonic() - started:.0f} s in all)"
    )
    return problems


def bridge_without_extra_problems(venv: Path) -> list[str]:
    """``chatmaid-bridge`` installed without the kafka extra must say how to install it."""
    process = subprocess.run(  # noqa: S603
        [str(venv / "bin" / "chatmaid-bridge"), "consume"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if process.returncode != 2 or "chatmaid-connectors[kafka]" not in process.stderr:
        return [f"chatmaid-bridge without the kafka extra (exit {process.returncode}) does not "
                f"name the extra:\n{process.stderr[-2000:]}"]  # fmt: skip
    print(f"chatmaid-bridge without [kafka]: {process.stderr.strip()}")
    return []


def wheel_problems(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode())
    problems = []
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append(f"{wheel.name} has no LICENSE")
    if metadata["License-Expression"] != "Apache-2.0":
        problems.append(f"License-Expression is {metadata['License-Expression']!r}")
    missing = set(CLASSIFIERS) - set(metadata.get_all("Classifier") or [])
    if missing:
        problems.append(f"classifiers missing: {sorted(missing)}")
    if not metadata.get_all("Project-URL"):
        problems.append("no Project-URL")
    description = metadata.get_payload()
    relative = RELATIVE_LINK.findall(description if isinstance(description, str) else "")
    if relative:
        problems.append(f"the description links relative paths: {relative}")
    if "chatmaid_airflow/links/chatmaid.py" not in names:
        problems.append("the wheel lacks chatmaid_airflow.links")
    return problems


def sdist_problems(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        names = set(archive.getnames())
    return [f"{sdist.name} lacks {name}" for name in SDIST_FILES if f"{root}/{name}" not in names]


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    process = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stdout}{process.stderr}")
    return process.stdout


if __name__ == "__main__":
    sys.exit(main())
