"""Idempotency keys: deterministic ones for adapters, random ones for one-off sends.

A key is at most 64 characters (the API's limit). Adapters derive theirs from what
identifies a logical send (Airflow: dag, task, run, map index; Kafka: the event), so a
retry, a redelivery or a restart reuses the key and the API returns the original
message instead of sending a second one.
"""

from __future__ import annotations

import hashlib
import re
import uuid

_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,14}$")


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


def random_idempotency_key() -> str:
    """A fresh random key, for a send whose caller gave none."""
    return f"cm-{uuid.uuid4().hex}"
