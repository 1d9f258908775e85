"""``chatmaid.sandbox``: a local, stateful twin of the Chatmaid API.

It serves the eight ``/v1`` endpoints as the documentation describes them (auth,
scopes, rate limits, idempotency, the test and live lifecycles, signed webhooks with
the documented retry schedule) plus an admin API and fault injection for tests.

>>> from chatmaid.sandbox import run_sandbox  # doctest: +SKIP
>>> with run_sandbox() as sandbox:  # doctest: +SKIP
...     sandbox.client().get_account()

Needs the ``sandbox`` extra (starlette, uvicorn). Names are imported on first use, so
``SEED`` and the pytest plugin cost nothing where the extra is not installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .seed import SEED, Seed

if TYPE_CHECKING:
    from .admin_client import Admin, SandboxAdminError
    from .app import create_app
    from .lifecycle import FAILURE_PATTERNS
    from .options import SandboxOptions, Settings, WebhookConfig
    from .server import SandboxHandle, ServerThread, run_sandbox, start_sandbox_process
    from .state import SandboxState

_LAZY = {
    "Admin": "admin_client",
    "SandboxAdminError": "admin_client",
    "create_app": "app",
    "FAILURE_PATTERNS": "lifecycle",
    "SandboxOptions": "options",
    "Settings": "options",
    "WebhookConfig": "options",
    "SandboxHandle": "server",
    "ServerThread": "server",
    "run_sandbox": "server",
    "start_sandbox_process": "server",
    "SandboxState": "state",
}

__all__ = [
    "FAILURE_PATTERNS",
    "SEED",
    "Admin",
    "SandboxAdminError",
    "SandboxHandle",
    "SandboxOptions",
    "SandboxState",
    "Seed",
    "ServerThread",
    "Settings",
    "WebhookConfig",
    "create_app",
    "run_sandbox",
    "start_sandbox_process",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
