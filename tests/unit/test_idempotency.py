"""Deterministic idempotency keys for adapters; random ones for one-off sends."""

from __future__ import annotations

import pytest

from chatmaid import derive_idempotency_key, random_idempotency_key


def test_same_parts_same_key() -> None:
    assert derive_idempotency_key("dag", "task", "run", 0) == derive_idempotency_key(
        "dag", "task", "run", 0
    )


def test_different_parts_different_keys() -> None:
    keys = {derive_idempotency_key("dag", "task", "run", i) for i in range(100)}
    assert len(keys) == 100


def test_part_boundaries_matter() -> None:
    assert derive_idempotency_key("ab", "c") != derive_idempotency_key("a", "bc")


def test_keys_fit_the_api_limit() -> None:
    key = derive_idempotency_key("x" * 1000, namespace="airflow.v1-abc")
    assert len(key) <= 64
    assert key.startswith("airflow.v1-abc-")
    assert len(random_idempotency_key()) <= 64


def test_random_keys_differ() -> None:
    assert random_idempotency_key() != random_idempotency_key()


@pytest.mark.parametrize("namespace", ["", "UPPER", "much-too-long-namespace", "sp ace"])
def test_bad_namespaces_are_refused(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        derive_idempotency_key("x", namespace=namespace)


def test_no_parts_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        derive_idempotency_key()
