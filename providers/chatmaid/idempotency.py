"""Idempotency keys: deterministic ones for adapters, random ones for one-off sends.

A key is at most 64 characters (the API's limit). Adapters derive theirs from what
identifies a logical send (Airflow: dag, task, run, map index; Kafka: the event), so a
retry, a redelivery or a restart reuses the key and the API returns the original
message instead of sending a second one.

Keys are scoped per *account*, across test and live keys, so a client's
``idempotency_key(...)`` mixes in the key's environment and the client's optional
deployment namespace: staging and production of one DAG never share a key. And since
any key could still have been used before, ``conflicts`` compares the message the API
returns with the one asked for; the client raises ``IdempotencyConflictError`` on a
difference instead of returning someone else's message as a success.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from ._errors import ChatmaidConfigurationError
from ._models import Message

_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,14}$")
_DEPLOYMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def derive_idempotency_key(*parts: object, namespace: str = "cm") -> str:
    """A stable key for the identity ``parts``: ``<namespace>-<48 hex chars>``.

    >>> derive_idempotency_key("dag", "task", "run", -1, namespace="af")[:3]
    'af-'
    """
    if not _NAMESPACE.match(namespace):
        raise ValueError(
            f"namespace {namespace!r} must be 1-15 lowercase letters, digits, '.', '_' or '-'"
        )
    if not parts:
        raise ValueError("derive_idempotency_key needs at least one identity part")
    # Length-prefix every part so ("ab", "c") and ("a", "bc") never collide.
    joined = "".join(f"{len(text)}:{text}" for text in map(str, parts))
    return f"{namespace}-{hashlib.sha256(joined.encode('utf-8')).hexdigest()[:48]}"


def scoped_idempotency_key(
    *parts: object, prefix: str, environment: str, namespace: str | None
) -> str:
    """``derive_idempotency_key`` for ``parts`` within an environment and deployment.

    >>> a = scoped_idempotency_key("dag", prefix="af", environment="test", namespace=None)
    >>> b = scoped_idempotency_key("dag", prefix="af", environment="live", namespace=None)
    >>> a != b
    True
    """
    return derive_idempotency_key(environment, namespace or "", *parts, namespace=prefix)


def check_namespace(value: str, *, what: str) -> None:
    """Refuse a deployment namespace that is empty, too long or not plain text."""
    if not isinstance(value, str) or not _DEPLOYMENT.fullmatch(value):
        raise ChatmaidConfigurationError(
            f"{what} {value!r} must be 1-64 letters, digits, '.', '_', ':' or '-' "
            "(e.g. 'staging' or 'eu-prod'), starting with a letter or digit"
        )


def random_idempotency_key() -> str:
    """A fresh random key, for a send whose caller gave none."""
    return f"cm-{uuid.uuid4().hex}"


def conflicts(
    asked: dict[str, Any],
    returned: Message,
    *,
    environment: str,
    sender_number: str | None = None,
) -> dict[str, tuple[object, object]]:
    """Fields where the message returned for a key differs from the send asked for.

    ``asked`` is the send's body (API field names), ``environment`` the key's;
    ``sender_number`` the sender's E.164 number when known. Fields the answer leaves
    out are not compared.
    """
    pairs: list[tuple[str, object, object]] = [
        ("to", asked.get("to"), returned.to),
        ("content", asked.get("content") or None, returned.content or None),
        ("mediaUrls", list(asked.get("mediaUrls") or []), list(returned.media_urls or [])),
        ("environment", environment, returned.environment),
    ]
    if sender_number is not None:
        pairs.append(("from", sender_number, returned.from_))
    return {
        name: (wanted, got)
        for name, wanted, got in pairs
        if _answered(returned, name) and wanted != got
    }


#: ``Message``'s attribute names by their names on the wire.
_ATTRIBUTES = {(info.alias or name): name for name, info in Message.model_fields.items()}


def _answered(message: Message, alias: str) -> bool:
    """True if the API's answer carried the field named ``alias`` on the wire."""
    return _ATTRIBUTES.get(alias) in message.model_fields_set
