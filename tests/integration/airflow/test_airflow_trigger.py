"""Hook, trigger and notifier in this process against the sandbox (no DAG run needed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from airflow.sdk import Context

from chatmaid import AsyncChatmaidClient
from chatmaid.sandbox import SandboxHandle
from chatmaid_airflow.hooks import chatmaid as hook_module
from chatmaid_airflow.hooks.chatmaid import ChatmaidHook
from chatmaid_airflow.notifications.chatmaid import ChatmaidNotifier
from chatmaid_airflow.triggers.chatmaid import ChatmaidMessageTrigger

pytestmark = pytest.mark.integration

UseConnection = Callable[..., None]
TO = "+15557654321"


def first_event(trigger: ChatmaidMessageTrigger) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for event in trigger.run():
            return cast("dict[str, Any]", event.payload)
        raise AssertionError("the trigger yielded no event")

    return asyncio.run(run())


def live_message(sandbox: SandboxHandle, to: str = TO) -> str:
    with sandbox.client(sandbox.live_key, requests_per_minute=None) as client:
        return client.send_message(from_phone=sandbox.phone_id, to=to, content="hi").id


def polls(sandbox: SandboxHandle) -> int:
    by_endpoint = sandbox.admin.requests()["byEndpoint"]
    return sum(by_endpoint.get("GET /v1/messages/{messageId}", {}).values())


def test_test_connection_uses_the_key(
    use_connection: UseConnection, chatmaid_sandbox: SandboxHandle
) -> None:
    use_connection()
    assert ChatmaidHook().test_connection() == (
        True,
        "Connected to Chatmaid account 'Chatmaid Sandbox' with a test key",
    )
    unknown = "sk_test_not_a_key_of_this_account"
    use_connection(unknown)
    ok, detail = ChatmaidHook().test_connection()
    assert not ok
    assert "HTTP 401" in detail
    assert unknown not in detail


def test_trigger_waits_for_a_live_message(
    use_connection: UseConnection, chatmaid_sandbox: SandboxHandle
) -> None:
    use_connection(chatmaid_sandbox.live_key)
    message_id = live_message(chatmaid_sandbox)

    event = first_event(ChatmaidMessageTrigger(message_id, time.time() + 30, poll_interval=0.1))

    assert event["status"] == "done"
    assert (event["message"]["id"], event["message"]["status"]) == (message_id, "sent")
    assert len(chatmaid_sandbox.admin.messages()) == 2  # the seed and ours: it never sends


def test_a_restarted_trigger_keeps_its_end_time(
    use_connection: UseConnection, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=60)  # stays pending throughout
    use_connection(chatmaid_sandbox.live_key)
    message_id = live_message(chatmaid_sandbox)
    trigger = ChatmaidMessageTrigger(message_id, time.time() + 1.0, poll_interval=0.2)

    async def interrupted() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(first_event_async(trigger), timeout=0.5)

    asyncio.run(interrupted())  # the triggerer went away mid-wait
    _, kwargs = trigger.serialize()
    started = time.monotonic()
    event = first_event(ChatmaidMessageTrigger(**kwargs))  # and picked it up again

    assert time.monotonic() - started < 0.9  # the end time was not pushed back
    assert event["status"] == "timeout"
    assert event["last_status"] == "pending"
    assert f"Chatmaid message {message_id} still 'pending' at the end" in event["error"]


async def first_event_async(trigger: ChatmaidMessageTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return cast("dict[str, Any]", event.payload)
    raise AssertionError("the trigger yielded no event")


def test_a_trigger_past_its_end_looks_once(
    use_connection: UseConnection, chatmaid_sandbox: SandboxHandle
) -> None:
    chatmaid_sandbox.admin.update_settings(live_delay=60)
    use_connection(chatmaid_sandbox.live_key)
    message_id = live_message(chatmaid_sandbox)

    event = first_event(ChatmaidMessageTrigger(message_id, time.time() - 5))

    assert event["status"] == "timeout"
    assert polls(chatmaid_sandbox) == 1


def test_trigger_honours_429_and_errors_become_events(
    use_connection: UseConnection, chatmaid_sandbox: SandboxHandle
) -> None:
    use_connection(chatmaid_sandbox.live_key)
    message_id = live_message(chatmaid_sandbox)
    chatmaid_sandbox.admin.force_rate_limit(60, retry_after=1, method="GET", count=2)
    started = time.monotonic()

    event = first_event(ChatmaidMessageTrigger(message_id, time.time() + 30, poll_interval=0.1))

    assert event["status"] == "done"
    assert time.monotonic() - started >= 2.0  # waited out both Retry-After answers
    assert chatmaid_sandbox.admin.requests()["byStatus"]["429"] == 2
    missing = first_event(ChatmaidMessageTrigger("msg_missing", time.time() + 30))
    assert (missing["status"], missing["retryable"]) == ("error", False)  # a retry cannot help
    host = chatmaid_sandbox.url.removeprefix("http://")
    assert missing["error"].startswith(
        f"Chatmaid (connection 'chatmaid_default', host {host}): HTTP 404 Not Found on "
        "/v1/messages/msg_missing"
    )


def test_concurrent_triggers_share_one_client_and_poll_lightly(
    use_connection: UseConnection,
    chatmaid_sandbox: SandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chatmaid_sandbox.admin.update_settings(rate_limit=0, live_delay=0.5)
    use_connection(chatmaid_sandbox.live_key, requests_per_minute=0)
    ids = [live_message(chatmaid_sandbox, f"+155576543{n:02d}") for n in range(40)]
    created: list[AsyncChatmaidClient] = []

    class Counting(AsyncChatmaidClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(hook_module, "AsyncChatmaidClient", Counting)
    end = time.time() + 30

    async def all_of_them() -> list[dict[str, Any]]:
        triggers = [ChatmaidMessageTrigger(i, end, poll_interval=0.2) for i in ids]
        return await asyncio.gather(*(first_event_async(t) for t in triggers))

    events = asyncio.run(all_of_them())

    assert [e["message"]["status"] for e in events] == ["sent"] * 40
    assert len(created) == 1
    assert created[0].is_closed
    assert polls(chatmaid_sandbox) <= 40 * 4  # at most 4 polls for a 0.5 s settle


def test_notifier_as_a_deadline_callback_sends_once(
    use_connection: UseConnection, chatmaid_sandbox: SandboxHandle
) -> None:
    use_connection()
    # What the triggerer does for a deadline's AsyncCallback: build with the context, await.
    deadline = {"dag_run": {"dag_id": "nightly"}, "deadline": {"id": "dl-7"}}
    kwargs: dict[str, Any] = {"to": TO, "content": "{{ dag_run.dag_id }} missed its deadline"}

    async def fire() -> None:
        await ChatmaidNotifier(**kwargs, context=cast("Context", dict(deadline)))

    asyncio.run(fire())
    asyncio.run(fire())  # the callback ran twice

    sent = [m for m in chatmaid_sandbox.admin.messages() if m["content"].startswith("nightly")]
    assert [m["content"] for m in sent] == ["nightly missed its deadline"]
