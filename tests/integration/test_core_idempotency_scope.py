"""Idempotency scope and the 429 wait, through the core against the sandbox over HTTP.

One sandbox account, a staging deployment on the test key and a production deployment
on the live key: the same DAG identity must never return one's message to the other.
"""

from __future__ import annotations

import pytest

from chatmaid import ChatmaidClient, ClientEvent, IdempotencyConflictError, RateLimitWait
from chatmaid.sandbox.server import SandboxHandle

pytestmark = pytest.mark.integration

IDENTITY = ("daily_kpi", "alert", "manual__2026-12-01T06:00:00+00:00", -1)


def new_messages(sandbox: SandboxHandle, before: set[str]) -> list[dict[str, object]]:
    """Messages the sandbox holds that were not there before (the seed holds some)."""
    return [m for m in sandbox.admin.messages() if m["id"] not in before]


def ids(sandbox: SandboxHandle) -> set[str]:
    return {str(m["id"]) for m in sandbox.admin.messages()}


def test_staging_and_production_of_one_dag_send_their_own_messages(
    chatmaid_sandbox: SandboxHandle,
) -> None:
    before = ids(chatmaid_sandbox)
    staging = chatmaid_sandbox.client(requests_per_minute=None)
    production = chatmaid_sandbox.client(chatmaid_sandbox.live_key, requests_per_minute=None)
    staged = staging.send_message(
        to="+15557654321",
        content="[STAGING] KPI dropped 20%",
        idempotency_key=staging.idempotency_key(*IDENTITY, prefix="af"),
    )
    produced = production.send_message(
        to="+15559990001",
        content="[PROD] KPI dropped 20%",
        idempotency_key=production.idempotency_key(*IDENTITY, prefix="af"),
    )
    assert staged.id != produced.id
    assert (produced.to, produced.content, produced.environment) == (
        "+15559990001",
        "[PROD] KPI dropped 20%",
        "live",
    )
    held = {(m["to"], m["environment"]) for m in new_messages(chatmaid_sandbox, before)}
    assert held == {("+15557654321", "test"), ("+15559990001", "live")}


def test_two_deployments_with_one_live_key_are_kept_apart_by_their_namespace(
    chatmaid_sandbox: SandboxHandle,
) -> None:
    before = ids(chatmaid_sandbox)
    clients = [
        chatmaid_sandbox.client(
            chatmaid_sandbox.live_key, requests_per_minute=None, idempotency_namespace=name
        )
        for name in ("eu-prod", "us-prod")
    ]
    sent = [
        c.send_message(
            to="+15557654321", content=name, idempotency_key=c.idempotency_key(*IDENTITY)
        )
        for c, name in zip(clients, ("eu", "us"), strict=True)
    ]
    assert [m.content for m in sent] == ["eu", "us"]
    assert len(new_messages(chatmaid_sandbox, before)) == 2


def test_a_key_already_used_for_another_message_is_a_conflict_and_sends_nothing(
    chatmaid_sandbox: SandboxHandle,
) -> None:
    before = ids(chatmaid_sandbox)
    staging = chatmaid_sandbox.client(requests_per_minute=None)
    production = chatmaid_sandbox.client(chatmaid_sandbox.live_key, requests_per_minute=None)
    staging.send_message(to="+15557654321", content="[STAGING]", idempotency_key="af-unscoped")
    with pytest.raises(IdempotencyConflictError) as caught:
        production.send_message(to="+15559990001", content="[PROD]", idempotency_key="af-unscoped")
    assert set(caught.value.differences) >= {"to", "content", "environment"}
    assert [m["environment"] for m in new_messages(chatmaid_sandbox, before)] == ["test"]


def test_a_documented_429_is_waited_out_for_its_body_retry_after(
    chatmaid_sandbox: SandboxHandle,
) -> None:
    events: list[ClientEvent] = []
    chatmaid_sandbox.admin.force_rate_limit(1.5, retry_after=1)
    client: ChatmaidClient = chatmaid_sandbox.client(
        requests_per_minute=None, observers=[events.append]
    )
    message = client.send_message(to="+15557654321", content="after the window")
    waits = [e.seconds for e in events if isinstance(e, RateLimitWait)]
    assert message.status == "sent"
    assert waits
    assert all(1.0 <= w <= 1.1 for w in waits)  # retryAfter: 1, plus at most 10 % jitter
