"""The sandbox's own reading of the docs' wire facts: key prefixes, E.164, headers, signing.

Deliberately not imported from the client: the sandbox is an independent reading of
the docs, so a mistake in one of the two is caught by the other's tests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import datetime, timezone

#: Key prefix -> environment (Authentication page, "Key Prefix Behavior").
KEY_PREFIXES = {"sk_test_": "test", "sk_live_": "live"}

#: E.164 as the docs state it: ``+``, a non-zero digit, at most 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
#: The docs' wording (Errors page), exactly.
E164_MESSAGE = "Phone number must be in E.164 format (e.g., +1987654321)"

EVENT_HEADER = "X-Chatmaid-Event"
SIGNATURE_HEADER = "X-Chatmaid-Signature"


def is_e164(value: object) -> bool:
    """True for a string in the E.164 format the docs state (no possible-number check)."""
    return isinstance(value, str) and value.isascii() and E164.fullmatch(value) is not None


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``, as the Webhooks page verifies."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def iso(value: datetime | None) -> str | None:
    """A timestamp as the docs write them (``2026-02-06T14:18:33.120Z``), or ``None``."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"
