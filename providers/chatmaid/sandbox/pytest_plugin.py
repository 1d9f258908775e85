"""pytest fixtures for a Chatmaid sandbox (registered as the ``chatmaid_sandbox`` plugin).

- ``chatmaid_sandbox``: a sandbox reset to its seed before the test. Its handle has
  ``url``, ``test_key``, ``live_key``, ``phone_id``, ``disconnected_phone_id``,
  ``admin`` (an ``Admin`` client) and ``client()`` / ``async_client()``.
- ``chatmaid_sandbox_server``: the same server, session-scoped, without the reset.
- ``chatmaid_sandbox_options``: the server's options; override it in a conftest.
- ``chatmaid_sandbox_profile``: the profile ``chatmaid_sandbox`` switches to after its
  reset (``docs`` by default); run a test in both with
  ``@pytest.mark.parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES)``.

One server runs per session, in a background thread on a free loopback port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import SandboxHandle


@pytest.fixture(scope="session")
def chatmaid_sandbox_options() -> dict[str, Any]:
    """``SandboxOptions`` fields of the session's sandbox: fast live delivery and retries."""
    return {"live_delay": 0.2, "time_scale": 0.001}


@pytest.fixture(scope="session")
def chatmaid_sandbox_server(chatmaid_sandbox_options: dict[str, Any]) -> Iterator[SandboxHandle]:
    """The session's sandbox server, as it is (not reset)."""
    from .server import run_sandbox  # imported late: the plugin loads in every pytest run

    with run_sandbox(**chatmaid_sandbox_options) as handle:
        yield handle


#: Both profiles, for ``parametrize("chatmaid_sandbox_profile", SANDBOX_PROFILES)``.
SANDBOX_PROFILES = ("docs", "live")


@pytest.fixture
def chatmaid_sandbox_profile() -> str:
    """The profile of ``chatmaid_sandbox`` for this test: ``docs`` unless parametrized."""
    return "docs"


@pytest.fixture
def chatmaid_sandbox(
    chatmaid_sandbox_server: SandboxHandle, chatmaid_sandbox_profile: str
) -> SandboxHandle:
    """The session's sandbox, reset to its seed and start options, in the test's profile."""
    chatmaid_sandbox_server.admin.reset()
    if chatmaid_sandbox_profile != chatmaid_sandbox_server.admin.settings()["profile"]:
        chatmaid_sandbox_server.admin.update_settings(profile=chatmaid_sandbox_profile)
    return chatmaid_sandbox_server
