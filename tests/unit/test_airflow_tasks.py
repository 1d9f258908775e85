"""Operator, sensor, trigger and notifier: keys, templating, XCom values, events, errors."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import jinja2
import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from airflow.sdk import DAG, Context

from chatmaid import AsyncChatmaidClient, ChatmaidClient, Message
from chatmaid_airflow.exceptions import (
    ChatmaidDeliveryFailed,
    ChatmaidFatalError,
    ChatmaidRetryableError,
)
from chatmaid_airflow.hooks.chatmaid import ChatmaidHook
from chatmaid_airflow.links.chatmaid import ChatmaidMessageLink
from chatmaid_airflow.notifications.chatmaid import ChatmaidNotifier, send_chatmaid_notification
from chatmaid_airflow.operators.chatmaid import (
    ChatmaidSendMessageOperator,
    task_idempotency_key,
)
from chatmaid_airflow.sensors.chatmaid import ChatmaidMessageSensor
from chatmaid_airflow.triggers.chatmaid import (
    DEFER_GRACE,
    ChatmaidMessageTrigger,
    message_from_event,
)
from tests.unit.conftest import MESSAGE, TEST_KEY

FAILED = {
    **MESSAGE,
    "status": "failed",
    "sentAt": None,
    "failedAt": "2026-02-06T14:18:35.000Z",
    "errorCode": "INVALID_RECIPIENT",
    "errorMessage": "Recipient is not a WhatsApp user",
}
PENDING = {**MESSAGE, "status": "pending", "sentAt": None}


@dataclass
class FakeTI:
    """The task instance attributes the provider reads, and its XCom pushes."""

    dag_id: str = "dag"
    task_id: str = "task"
    run_id: str = "manual__2026-01-01"
    map_index: int = -1
    try_number: int = 1
    # The try started before MESSAGE was created: its send is a new one.
    start_date: datetime = datetime(2026, 2, 6, 14, 18, 30, tzinfo=timezone.utc)
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(ti: FakeTI | None = None, **values: Any) -> Context:
    return cast("Context", {"ti": ti or FakeTI(), **values})


class FakeHook(ChatmaidHook):
    """Answers from canned messages; records the calls."""

    def __init__(self, sent: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        super().__init__("fake")
        self.sent = Message.model_validate(sent)
        self.current = Message.model_validate(current or sent)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.__dict__["client"] = ChatmaidClient(TEST_KEY)  # keys only: it never sends

    def send_message(self, **fields: Any) -> Message:
        self.calls.append(("send", fields))
        return self.sent

    def get_message(self, message_id: str) -> Message:
        self.calls.append(("get", {"message_id": message_id}))
        return self.current

    def wait_for_terminal(self, message_id: str, **options: Any) -> Message:
        self.calls.append(("wait", {"message_id": message_id, **options}))
        return self.current

    def message_url(self, message_id: str) -> str:
        return f"https://dashboard.example.com/messages/{message_id}"

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[Any]:
        async with AsyncChatmaidClient(TEST_KEY) as client:  # keys only: it never sends
            yield client

    async def asend_message(self, client: Any, **fields: Any) -> Message:
        self.calls.append(("asend", fields))
        return self.sent


def operator(hook: FakeHook, **kwargs: Any) -> ChatmaidSendMessageOperator:
    op = ChatmaidSendMessageOperator(task_id="send", to="+15557654321", content="hi", **kwargs)
    op.__dict__["hook"] = hook
    return op


# -- idempotency keys -------------------------------------------------------------------


STAGING = ChatmaidClient(TEST_KEY)


def test_task_key_is_stable_across_tries_and_distinct_per_identity() -> None:
    first = task_idempotency_key(context(FakeTI(try_number=1)), client=STAGING)
    assert task_idempotency_key(context(FakeTI(try_number=3)), client=STAGING) == first
    others = {
        task_idempotency_key(context(FakeTI(map_index=0)), client=STAGING),
        task_idempotency_key(context(FakeTI(map_index=1)), client=STAGING),
        task_idempotency_key(context(FakeTI(task_id="other")), client=STAGING),
        task_idempotency_key(context(FakeTI(run_id="scheduled__2026-01-02")), client=STAGING),
        task_idempotency_key(context(FakeTI(dag_id="other")), client=STAGING),
    }
    assert len(others) == 5
    assert first not in others
    assert first.startswith("airflow-")
    assert len(first) <= 64


def test_task_keys_differ_per_environment_and_namespace_of_the_connection() -> None:
    live = ChatmaidClient(TEST_KEY.replace("sk_test_", "sk_live_"))
    eu = ChatmaidClient(TEST_KEY.replace("sk_test_", "sk_live_"), idempotency_namespace="eu")
    ctx = context()
    keys = {task_idempotency_key(ctx, client=client) for client in (STAGING, live, eu)}
    assert len(keys) == 3


def test_operator_sends_with_the_derived_key_unless_given_one() -> None:
    hook = FakeHook(MESSAGE)
    operator(hook).execute(context(FakeTI(map_index=2)))
    operator(hook, idempotency_key="my-key").execute(context())
    (_, derived), (_, given) = hook.calls
    expected = task_idempotency_key(context(FakeTI(map_index=2)), client=hook.client)
    assert derived["idempotency_key"] == expected
    assert given["idempotency_key"] == "my-key"


# -- templating -------------------------------------------------------------------------


def test_every_send_field_is_templated() -> None:
    with DAG("templating", schedule=None, start_date=datetime(2026, 1, 1)):
        op = ChatmaidSendMessageOperator(
            task_id="send",
            to="{{ params.to }}",
            content="Load for {{ ds }} done",
            media_urls=["https://cdn.example.com/{{ ds }}.png"],
            from_phone="{{ params.sender }}",
            idempotency_key="report-{{ ds }}",
            chatmaid_conn_id="chatmaid_{{ params.env }}",
        )
    op.render_template_fields(
        context(
            ds="2026-01-02",
            params={"to": "+15557654321", "sender": "+15551234567", "env": "staging"},
        )
    )
    assert (op.to, op.content, op.from_phone, op.idempotency_key, op.chatmaid_conn_id) == (
        "+15557654321",
        "Load for 2026-01-02 done",
        "+15551234567",
        "report-2026-01-02",
        "chatmaid_staging",
    )
    assert op.media_urls == ["https://cdn.example.com/2026-01-02.png"]
    assert op.hook.chatmaid_conn_id == "chatmaid_staging"
    assert set(ChatmaidNotifier.template_fields) == set(op.template_fields)
    assert ChatmaidMessageSensor.template_fields == ("message_id", "chatmaid_conn_id")


# -- XCom values and failures -------------------------------------------------------------


def test_execute_returns_the_message_and_pushes_its_id() -> None:
    ti = FakeTI()
    result = operator(FakeHook(MESSAGE)).execute(context(ti))
    assert result == {**Message.model_validate(MESSAGE).to_api(), "reused": False}
    assert result["id"] == "msg_abc123def456"
    assert result["status"] == "sent"
    assert result["sentAt"] == "2026-02-06T14:18:33.120Z"
    assert ti.pushed == {"message_id": "msg_abc123def456"}


def test_a_failed_message_fails_the_task_with_the_api_reason() -> None:
    with pytest.raises(ChatmaidDeliveryFailed) as caught:
        operator(FakeHook(FAILED)).execute(context())
    assert isinstance(caught.value, AirflowFailException)  # no retry: same key, same message
    assert str(caught.value) == (
        "Chatmaid message msg_abc123def456 to +15557654321 failed: "
        "INVALID_RECIPIENT: Recipient is not a WhatsApp user"
    )
    assert caught.value.error_code == "INVALID_RECIPIENT"


def test_a_failed_message_can_be_accepted() -> None:
    result = operator(FakeHook(FAILED), fail_on_delivery_failure=False).execute(context())
    assert result["errorCode"] == "INVALID_RECIPIENT"


def test_without_waiting_a_pending_message_is_the_result() -> None:
    hook = FakeHook(PENDING)
    assert operator(hook).execute(context())["status"] == "pending"
    assert [name for name, _ in hook.calls] == ["send"]


def test_waiting_in_the_worker_uses_the_cores_wait() -> None:
    hook = FakeHook(PENDING, current=MESSAGE)
    op = operator(
        hook,
        wait_for_delivery=True,
        deferrable=False,
        delivery_timeout=timedelta(seconds=42),
        poll_interval=0.5,
    )
    assert op.execute(context())["status"] == "sent"
    assert hook.calls[-1] == (
        "wait",
        {
            "message_id": "msg_abc123def456",
            "timeout": 42.0,
            "poll_interval": 0.5,
            "max_poll_interval": 30.0,
        },
    )


def test_deferrable_wait_defers_to_the_trigger_with_an_absolute_end() -> None:
    op = operator(FakeHook(PENDING), wait_for_delivery=True, deferrable=True, delivery_timeout=60)
    before = time.time()
    with pytest.raises(TaskDeferred) as caught:
        op.execute(context())
    deferred = caught.value
    trigger = deferred.trigger
    assert isinstance(trigger, ChatmaidMessageTrigger)
    assert trigger.message_id == "msg_abc123def456"
    assert before + 60 <= trigger.end_time <= time.time() + 60
    assert deferred.method_name == "execute_complete"
    assert deferred.kwargs == {"reused": False}
    assert deferred.timeout == timedelta(seconds=60) + DEFER_GRACE


def test_a_message_already_final_is_not_waited_for() -> None:
    hook = FakeHook(MESSAGE)
    op = operator(hook, wait_for_delivery=True, deferrable=True)
    assert op.execute(context())["status"] == "sent"
    assert [name for name, _ in hook.calls] == ["send"]


# -- a send an earlier try made ---------------------------------------------------------


def test_a_retry_that_gets_the_earlier_message_says_it_sent_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    later = FakeTI(try_number=2, start_date=datetime(2026, 2, 6, 14, 20, tzinfo=timezone.utc))
    result = operator(FakeHook(MESSAGE)).execute(context(later))
    assert result["reused"] is True
    out = capsys.readouterr().out
    assert (
        "Chatmaid message msg_abc123def456 to +15557654321 was already sent by an earlier "
        "try; not sent again (it is sent)"
    ) in out
    assert "is sent" not in out.replace("(it is sent)", "")
    assert operator(FakeHook(MESSAGE)).execute(context())["reused"] is False
    assert "msg_abc123def456 to +15557654321 is sent" in capsys.readouterr().out


def test_a_deferred_retry_carries_reused_to_its_result() -> None:
    later = FakeTI(try_number=2, start_date=datetime(2026, 2, 6, 14, 20, tzinfo=timezone.utc))
    op = operator(FakeHook(PENDING), wait_for_delivery=True, deferrable=True)
    with pytest.raises(TaskDeferred) as caught:
        op.execute(context(later))
    assert caught.value.kwargs == {"reused": True}
    done = {"status": "done", "message_id": "msg_abc123def456", "message": MESSAGE}
    assert op.execute_complete(context(later), done, **caught.value.kwargs)["reused"] is True


def test_the_message_link_points_at_the_connections_message_url() -> None:
    link = ChatmaidMessageLink()
    op = operator(FakeHook(MESSAGE))
    assert link.get_link(op, ti_key=cast("Any", None)) == ""
    op.execute(context())
    expected = "https://dashboard.example.com/messages/msg_abc123def456"
    assert link.get_link(op, ti_key=cast("Any", None)) == expected
    watch = sensor(FakeHook(MESSAGE))
    watch.poke(context())
    assert link.get_link(watch, ti_key=cast("Any", None)) == expected
    assert link.name == "Chatmaid message"
    assert ChatmaidSendMessageOperator.operator_extra_links == (link,)


# -- trigger events ---------------------------------------------------------------------


def test_trigger_serializes_to_exactly_its_arguments() -> None:
    trigger = ChatmaidMessageTrigger(
        "msg_1", end_time=1_800_000_000.5, chatmaid_conn_id="cm", poll_interval=1.0
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "message_id": "msg_1",
        "end_time": 1_800_000_000.5,
        "chatmaid_conn_id": "cm",
        "poll_interval": 1.0,
        "max_poll_interval": 30.0,
        "backoff": 1.5,
    }


def test_execute_complete_turns_events_into_results_or_clear_errors() -> None:
    op = operator(FakeHook(PENDING), wait_for_delivery=True)
    done = {"status": "done", "message_id": "msg_1", "message": MESSAGE}
    assert op.execute_complete(context(), done)["status"] == "sent"
    failed = {"status": "done", "message_id": "msg_1", "message": FAILED}
    with pytest.raises(ChatmaidDeliveryFailed, match="INVALID_RECIPIENT"):
        op.execute_complete(context(), failed)
    timeout = {"status": "timeout", "message_id": "msg_1", "error": "still 'pending' at the end"}
    with pytest.raises(AirflowException, match="still 'pending' at the end"):
        op.execute_complete(context(), timeout)
    error = {"status": "error", "message_id": "msg_1", "error": "ServerError: HTTP 503"}
    with pytest.raises(ChatmaidRetryableError, match="msg_1 failed: ServerError: HTTP 503"):
        op.execute_complete(context(), {**error, "retryable": True})
    with pytest.raises(ChatmaidRetryableError):
        op.execute_complete(context(), error)  # an event of an older trigger
    fatal = {**error, "error": "HTTP 401 Unauthorized", "retryable": False}
    with pytest.raises(ChatmaidFatalError, match="msg_1 failed: HTTP 401 Unauthorized"):
        op.execute_complete(context(), fatal)


def test_sensor_timeouts_are_sensor_timeouts() -> None:
    event = {"status": "timeout", "message_id": "msg_1", "error": "late"}
    with pytest.raises(AirflowSensorTimeout, match="late"):
        message_from_event(event, timeout_error=AirflowSensorTimeout)


# -- sensor -----------------------------------------------------------------------------


def sensor(hook: FakeHook, **kwargs: Any) -> ChatmaidMessageSensor:
    op = ChatmaidMessageSensor(task_id="watch", message_id="msg_abc123def456", **kwargs)
    op.__dict__["hook"] = hook
    return op


def test_sensor_pokes_until_terminal_then_returns_the_message() -> None:
    assert not sensor(FakeHook(PENDING)).poke(context()).is_done
    done = sensor(FakeHook(MESSAGE)).poke(context())
    assert done.is_done
    assert done.xcom_value == Message.model_validate(MESSAGE).to_api()


def test_sensor_fails_fast_on_failed_and_on_other_final_statuses() -> None:
    with pytest.raises(ChatmaidDeliveryFailed, match="INVALID_RECIPIENT"):
        sensor(FakeHook(FAILED)).poke(context())
    with pytest.raises(AirflowFailException, match="ended 'sent', not one of \\['read'\\]"):
        sensor(FakeHook(MESSAGE), target_statuses=["read"]).poke(context())
    waiting_for_failure = sensor(FakeHook(FAILED), target_statuses=["failed"])
    assert waiting_for_failure.poke(context()).is_done


def test_sensor_rejects_statuses_that_never_end_a_wait() -> None:
    with pytest.raises(ValueError, match="target_statuses must be terminal"):
        ChatmaidMessageSensor(task_id="watch", message_id="m", target_statuses=["pending"])


def test_deferrable_sensor_looks_once_then_defers() -> None:
    hook = FakeHook(PENDING)
    watch = sensor(hook, deferrable=True, poke_interval=3, timeout=120)
    with pytest.raises(TaskDeferred) as caught:
        watch.execute(context())
    trigger = caught.value.trigger
    assert isinstance(trigger, ChatmaidMessageTrigger)
    assert (trigger.poll_interval, trigger.max_poll_interval) == (3.0, 30.0)
    assert caught.value.timeout == timedelta(seconds=120) + DEFER_GRACE
    assert [name for name, _ in hook.calls] == ["get"]
    assert sensor(FakeHook(MESSAGE), deferrable=True).execute(context())["status"] == "sent"


# -- notifier ---------------------------------------------------------------------------


def sends(
    notifier: ChatmaidNotifier, ctx: Context, client: ChatmaidClient = STAGING
) -> list[dict[str, Any]]:
    return notifier._sends(ctx, client=client)


def test_notifier_keys_are_per_recipient_and_per_try() -> None:
    notifier = ChatmaidNotifier(to=["+15557654321", "+15557654322"], content="failed")
    first = sends(notifier, context(FakeTI(try_number=1)))
    again = sends(notifier, context(FakeTI(try_number=1)))
    retry = sends(notifier, context(FakeTI(try_number=2)))
    keys = [s["idempotency_key"] for s in first]
    assert keys == [s["idempotency_key"] for s in again]
    assert len({*keys, *(s["idempotency_key"] for s in retry)}) == 4
    assert [s["to"] for s in first] == ["+15557654321", "+15557654322"]
    namespaced = ChatmaidClient(TEST_KEY, idempotency_namespace="prod-eu")
    elsewhere = sends(notifier, context(FakeTI(try_number=1)), namespaced)
    assert not {s["idempotency_key"] for s in elsewhere} & set(keys)


def test_notifier_deadline_context_and_explicit_keys() -> None:
    given = {"deadline": {"id": "dl-1"}, "dag_run": {"dag_id": "d"}}
    deadline = cast("Context", given)
    single = ChatmaidNotifier(to="+15557654321", content="late", context=deadline)
    assert single.context.get("deadline") is given["deadline"]
    assert sends(single, deadline)[0]["idempotency_key"].startswith("airflow-notify-")
    explicit = ChatmaidNotifier(to=["+15557654321", "+15557654322"], idempotency_key="k")
    assert len({s["idempotency_key"] for s in sends(explicit, context())}) == 2
    assert (
        sends(ChatmaidNotifier(to="+15557654321", idempotency_key="k"), context())[0][
            "idempotency_key"
        ]
        == "k"
    )
    assert sends(single, cast("Context", {}))[0]["idempotency_key"] is None


def test_a_deadline_callback_renders_the_names_task_callbacks_have() -> None:
    hook = FakeHook(MESSAGE)
    # What Airflow gives a deadline's AsyncCallback: the run as the REST API shows it.
    deadline = {
        "dag_run": {
            "dag_run_id": "manual__2026-02-06T14:00:00+00:00",
            "dag_id": "nightly",
            "run_after": "2026-02-06T14:00:00Z",
            "logical_date": None,
            "conf": {"team": "data"},
        },
        "deadline": {"id": "dl-7", "deadline_time": "2026-02-06T16:00:00Z"},
    }
    notifier = ChatmaidNotifier(
        to="+15557654321",
        content="{{ dag_run.dag_id }} {{ dag_run.run_id }} ({{ run_id }}) of "
        "{{ dag_run.run_after | ds }} for {{ dag_run.conf.team }} is late",
        context=cast("Context", deadline),
    )
    notifier.__dict__["hook"] = hook

    async def fire() -> None:
        await notifier

    asyncio.run(fire())
    ((_, fields),) = hook.calls
    assert fields["content"] == (
        "nightly manual__2026-02-06T14:00:00+00:00 (manual__2026-02-06T14:00:00+00:00) of "
        "2026-02-06 for data is late"
    )


def test_notifier_renders_its_fields_and_sends_through_the_hook() -> None:
    hook = FakeHook(MESSAGE)
    notifier = send_chatmaid_notification(
        to="{{ params.on_call }}", content="{{ ti.task_id }} failed on {{ ds }}"
    )
    notifier.__dict__["hook"] = hook
    with DAG("notify", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        pass
    notifier(context(FakeTI(task_id="load"), ds="2026-01-02", dag=dag, params={"on_call": "+1555"}))
    ((_, fields),) = hook.calls
    assert (fields["to"], fields["content"]) == ("+1555", "load failed on 2026-01-02")


def test_a_notifier_template_that_fails_still_sends_a_fallback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    hook = FakeHook(MESSAGE)
    notifier = send_chatmaid_notification(
        to="{{ params.on_call }}",
        content="{{ ti.task_id }} failed on {{ ds }}",  # a manual run has no ds
        from_phone="{{ params.sender }}",
    )
    notifier.__dict__["hook"] = hook
    with DAG("notify", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        pass
    notifier(context(FakeTI(task_id="load"), dag=dag, params={"on_call": "+1555"}))
    ((_, fields),) = hook.calls
    assert fields["to"] == "+1555"
    assert fields["from_phone"] is None  # failed too: the connection's default sender
    assert fields["content"] == (
        "Airflow alert from dag.load, run manual__2026-01-01 (the notification's template "
        "failed to render: content: UndefinedError: 'ds' is undefined; "
        "from_phone: UndefinedError: 'dict object' has no attribute 'sender')"
    )
    assert "[warning  ] The Chatmaid notification's template failed to render (content: " in (
        capsys.readouterr().out
    )


def test_a_notifier_keeps_its_text_when_another_field_fails() -> None:
    hook = FakeHook(MESSAGE)
    notifier = send_chatmaid_notification(
        to="+1555", content="load failed", media_urls=["{{ nothing.here }}"]
    )
    notifier.__dict__["hook"] = hook
    with DAG("notify", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        pass
    notifier(context(dag=dag))
    ((_, fields),) = hook.calls
    assert fields["media_urls"] is None
    assert fields["content"].startswith("Airflow alert from dag.task, run manual__2026-01-01: ")
    assert (
        "load failed (the notification's template failed to render: media_urls:"
        in (fields["content"])
    )


def test_a_notifier_without_recipients_fails() -> None:
    notifier = send_chatmaid_notification(to="{{ params.on_call }}", content="x")
    notifier.__dict__["hook"] = FakeHook(MESSAGE)
    with DAG("notify", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        pass
    with pytest.raises(jinja2.UndefinedError):
        notifier(context(dag=dag, params={}))
