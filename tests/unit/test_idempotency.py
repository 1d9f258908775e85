"""Deterministic idempotency keys for adapters; random ones for one-off sends."""

from __future__ import annotations

import pytest

from chatmaid import (
    ChatmaidClient,
    ChatmaidConfigurationError,
    IdempotencyConflictError,
    derive_idempotency_key,
    random_idempotency_key,
)

from .conftest import MESSAGE, Api, envelope
from .test_client_endpoints import PHONE


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


def test_a_clients_derived_keys_differ_by_environment_and_namespace() -> None:
    test_key = ChatmaidClient("sk_test_abcdefghijklmnop", requests_per_minute=None)
    live_key = ChatmaidClient("sk_live_abcdefghijklmnop", requests_per_minute=None)
    staging = ChatmaidClient(
        "sk_live_abcdefghijklmnop", requests_per_minute=None, idempotency_namespace="staging"
    )
    parts = ("daily_kpi", "alert", "manual__2026-12-01", -1)
    keys = {c.idempotency_key(*parts, prefix="af") for c in (test_key, live_key, staging)}
    assert len(keys) == 3
    assert all(key.startswith("af-") and len(key) <= 64 for key in keys)
    assert live_key.idempotency_key(*parts, prefix="af") == live_key.idempotency_key(
        *parts, prefix="af"
    )


@pytest.mark.parametrize("namespace", ["", " ", "has space", "x" * 65, "ünï"])
def test_bad_deployment_namespaces_are_refused_clearly(namespace: str) -> None:
    with pytest.raises(ChatmaidConfigurationError, match="idempotency_namespace"):
        ChatmaidClient("sk_test_abcdefghijklmnop", idempotency_namespace=namespace)


def test_another_messages_answer_for_a_key_is_a_conflict_not_a_success(api: Api) -> None:
    staging = {**MESSAGE, "to": "+15557654321", "content": "[STAGING] KPI", "environment": "test"}
    api.respond(lambda _r: envelope(staging, 201))
    client = api.client(api_key="sk_live_unit0123456789abcd")
    with pytest.raises(IdempotencyConflictError) as caught:
        api.call(
            "send_message",
            client=client,
            from_phone="p1",
            to="+15559990001",
            content="[PROD] KPI dropped 20%",
            idempotency_key="af-shared",
        )
    conflict = caught.value
    assert conflict.idempotency_key == "af-shared"
    assert conflict.message.id == MESSAGE["id"]
    assert conflict.differences == {
        "to": ("+15559990001", "+15557654321"),
        "content": ("[PROD] KPI dropped 20%", "[STAGING] KPI"),
        "environment": ("live", "test"),
    }
    assert "af-shared" in str(conflict)
    assert "sk_live_" not in str(conflict)


def test_the_same_send_answered_again_is_its_own_message(api: Api) -> None:
    api.respond(lambda _r: envelope(MESSAGE, 201))
    message = api.call(
        "send_message", from_phone="p1", to=MESSAGE["to"], content="Hello", idempotency_key="k"
    )
    assert message.id == MESSAGE["id"]


def test_a_resolved_senders_number_is_compared_too(api: Api) -> None:
    other_sender = {**MESSAGE, "from": "+15550000009"}
    api.respond([envelope([PHONE]), envelope(other_sender, 201)])
    with pytest.raises(IdempotencyConflictError, match="from: asked"):
        api.call("send_message", to=MESSAGE["to"], content="Hello", idempotency_key="k")


def test_fields_the_answer_leaves_out_are_not_compared(api: Api) -> None:
    api.respond(lambda _r: envelope({"id": "msg_1", "status": "sent"}, 201))
    message = api.call(
        "send_message", from_phone="p1", to="+15557654321", content="x", idempotency_key="k"
    )
    assert message.id == "msg_1"
