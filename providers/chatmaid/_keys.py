"""API keys: the environment a key implies, and the masked form shown to people."""

from __future__ import annotations

from typing import Literal

from ._errors import ChatmaidConfigurationError

KEY_PREFIXES: dict[str, Literal["test", "live"]] = {"sk_test_": "test", "sk_live_": "live"}


def environment_of(api_key: str) -> Literal["test", "live"]:
    """``test`` or ``live``, from the key's prefix; a clear error for any other key."""
    for prefix, environment in KEY_PREFIXES.items():
        if api_key.startswith(prefix) and len(api_key) > len(prefix):
            return environment
    raise ChatmaidConfigurationError(
        f"API key {mask_key(api_key)} is not a Chatmaid key: it must start with "
        "'sk_test_' (sandbox) or 'sk_live_' (production). Copy it from the dashboard's "
        "API Keys page, or set CHATMAID_API_KEY."
    )


def mask_key(api_key: str) -> str:
    """The key as logs and errors may show it: its prefix and last four characters."""
    for prefix in KEY_PREFIXES:
        if api_key.startswith(prefix):
            tail = api_key[len(prefix) :]
            return f"{prefix}…{tail[-4:]}" if len(tail) > 8 else f"{prefix}…"
    return "…" + api_key[-2:] if len(api_key) > 12 else "…"
