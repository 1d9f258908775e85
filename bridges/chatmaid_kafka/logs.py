"""Structured logs: one JSON object a line (or plain text), secrets masked.

Secrets never reach a log on purpose (settings hold them as ``SecretStr``, the core
masks keys), and as a second line of defence every line is scrubbed of API-key-shaped
strings and of the configured secret values before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

from chatmaid import mask_key

_API_KEY = re.compile(r"sk_(?:test|live)_[A-Za-z0-9_\-]+")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class SecretScrubber:
    """Replaces API keys and the given secret values in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with secrets masked."""
        text = _API_KEY.sub(lambda match: mask_key(match.group(0)), text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra fields, "exc"}`` per line."""

    def __init__(self, scrub: SecretScrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line, every value scrubbed before it is serialised (escaping would
        hide a secret holding ``"``, ``\\`` or non-ASCII characters from the scrubber)."""
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(_scrubbed(entry, self._scrub))


def _scrubbed(value: object, scrub: SecretScrubber) -> object:
    """``value`` with every string in it scrubbed; numbers, booleans and None kept."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(k)): _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, scrub) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


class TextFormatter(logging.Formatter):
    """A readable line, scrubbed."""

    def __init__(self, scrub: SecretScrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        """One text line (plus a traceback, if any)."""
        return self._scrub(super().format(record))


def configure_logging(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Send every log record to stderr in ``fmt`` (``json`` or ``text``) at ``level``."""
    scrub = SecretScrubber(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty at INFO: kafka-python logs every connection, httpx every request.
    quiet = max(logging.getLevelName(level), logging.WARNING)
    for name in ("kafka", "httpx"):
        logging.getLogger(name).setLevel(quiet)
