"""``ChatmaidSendMessageOperator``: send a WhatsApp message from a task, once.

The send happens in the worker with an idempotency key derived from the task
instance (dag, task, run, map index), so a retried or cleared task gets the original
message back instead of sending a second one (and says so: ``reused``). With
``wait_for_delivery`` the task then waits for ``sent`` or ``failed``: polling in the
worker, or deferred to ``ChatmaidMessageTrigger`` (which only polls) when ``deferrable``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import conf
from airflow.sdk import BaseOperator, Context

from chatmaid import AsyncChatmaidClient, ChatmaidClient, Message
from chatmaid_airflow.exceptions import ChatmaidDeliveryFailed
from chatmaid_airflow.hooks.chatmaid import ChatmaidHook
from chatmaid_airflow.links.chatmaid import ChatmaidMessageLink
from chatmaid_airflow.triggers.chatmaid import (
    DEFER_GRACE,
    ChatmaidMessageTrigger,
    message_from_event,
)


def sent_by_an_earlier_try(message: Message, context: Context) -> bool:
    """Whether the API answered with a message created before this try started.

    The API returns the original message for a reused idempotency key, as it does for
    a new one; what tells them apart is its ``createdAt``: older than the try's
    ``start_date``, an earlier try (or run, with a key of your own) sent it. This
    assumes the API's clock and Airflow's agree within the time a try takes to send.
    """
    started = context["ti"].start_date
    return bool(started and message.created_at and message.created_at < started)


def task_idempotency_key(context: Context, *, client: ChatmaidClient | AsyncChatmaidClient) -> str:
    """The idempotency key of this task instance's send through ``client``.

    The same on every try and after a clear (``try_number`` is left out); different
    for each map index, task, run and DAG, and for each environment (test or live key)
    and ``idempotency_namespace`` of the connection: two deployments of one DAG on one
    account never share a key.
    """
    ti = context["ti"]
    return client.idempotency_key(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, prefix="airflow")


class ChatmaidSendMessageOperator(BaseOperator):
    """Send one WhatsApp message through Chatmaid, optionally waiting for its delivery.

    Returns (and pushes to XCom) the message as the API returns it: ``id``,
    ``status``, ``to``, ``from``, ``createdAt``, ``sentAt``, ``failedAt``,
    ``errorCode``, ``errorMessage``..., plus ``reused``: true when an earlier try had
    sent it already (a retry or a clear), so this one sent nothing. The id is also
    pushed under the XCom key ``message_id``. A message that ends ``failed`` fails the
    task (no retry: the idempotency key would return the same failed message) unless
    ``fail_on_delivery_failure=False``.

    Example::

        ChatmaidSendMessageOperator(
            task_id="tell_ops",
            to="+15557654321",
            content="Load of {{ dag_run.run_after | ds }} finished",
            wait_for_delivery=True,
            deferrable=True,
        )

    :param to: recipient, E.164 (templated).
    :param content: text, at most 4096 characters (templated).
    :param media_urls: public https URLs (templated).
    :param from_phone: sender: a phone id, the E.164 number of one of the account's
        phones, or ``None`` for the first connected phone (templated).
    :param idempotency_key: overrides the key derived from the task instance
        (templated; at most 64 characters).
    :param chatmaid_conn_id: the Chatmaid connection (templated).
    :param wait_for_delivery: after sending, wait until the message is ``sent`` or
        ``failed``.
    :param deferrable: wait in the triggerer instead of the worker (default:
        ``[operators] default_deferrable``).
    :param delivery_timeout: how long to wait for delivery (seconds or a timedelta).
    :param poll_interval: seconds between the first polls, growing 1.5x each time...
    :param max_poll_interval: ...up to this many seconds.
    :param fail_on_delivery_failure: fail the task when the message ends ``failed``.
    """

    template_fields: Sequence[str] = (
        "to",
        "content",
        "media_urls",
        "from_phone",
        "idempotency_key",
        "chatmaid_conn_id",
    )
    ui_color = "#25d366"
    operator_extra_links = (ChatmaidMessageLink(),)

    def __init__(
        self,
        *,
        to: str,
        content: str | None = None,
        media_urls: Sequence[str] | None = None,
        from_phone: str | None = None,
        idempotency_key: str | None = None,
        chatmaid_conn_id: str = ChatmaidHook.default_conn_name,
        wait_for_delivery: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        delivery_timeout: float | timedelta = 300.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        fail_on_delivery_failure: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.content = content
        self.media_urls = media_urls
        self.from_phone = from_phone
        self.idempotency_key = idempotency_key
        self.chatmaid_conn_id = chatmaid_conn_id
        self.wait_for_delivery = wait_for_delivery
        self.deferrable = deferrable
        self.delivery_timeout = (
            delivery_timeout.total_seconds()
            if isinstance(delivery_timeout, timedelta)
            else float(delivery_timeout)
        )
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.fail_on_delivery_failure = fail_on_delivery_failure
        self.message_url: str | None = None  # the message's link, once there is one

    @cached_property
    def hook(self) -> ChatmaidHook:
        """The hook on ``chatmaid_conn_id``."""
        return ChatmaidHook(self.chatmaid_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Send (idempotently), then wait for delivery if asked to."""
        with self.hook.task_errors():  # reading the connection may fail: say so, no retry
            key = self.idempotency_key or task_idempotency_key(context, client=self.hook.client)
        message = self.hook.send_message(
            to=self.to,
            content=self.content,
            media_urls=self.media_urls,
            from_phone=self.from_phone,
            idempotency_key=key,
        )
        self.message_url = self.hook.message_url(message.id)
        reused = sent_by_an_earlier_try(message, context)
        if reused:
            self.log.info(
                "Chatmaid message %s to %s was already sent by an earlier try; not sent again "
                "(it is %s)",
                message.id,
                message.to,
                message.status,
            )
        else:
            self.log.info("Chatmaid message %s to %s is %s", message.id, message.to, message.status)
        context["ti"].xcom_push(key="message_id", value=message.id)
        if message.is_terminal or not self.wait_for_delivery:
            return self._result(message, reused=reused)
        if self.deferrable:
            self.defer(
                trigger=ChatmaidMessageTrigger(
                    message.id,
                    end_time=time.time() + self.delivery_timeout,
                    chatmaid_conn_id=self.chatmaid_conn_id,
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                ),
                method_name="execute_complete",
                kwargs={"reused": reused},
                timeout=timedelta(seconds=self.delivery_timeout) + DEFER_GRACE,
            )
        final = self.hook.wait_for_terminal(
            message.id,
            timeout=self.delivery_timeout,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
        )
        return self._result(final, reused=reused)

    def execute_complete(
        self, context: Context, event: dict[str, Any], reused: bool = False
    ) -> dict[str, Any]:
        """Resume after the trigger: the delivered message, or the task fails."""
        self.message_url = self.hook.message_url(event["message_id"])
        return self._result(message_from_event(event), reused=reused)

    def _result(self, message: Message, *, reused: bool) -> dict[str, Any]:
        if message.is_failed and self.fail_on_delivery_failure:
            raise ChatmaidDeliveryFailed(message)
        return {**message.to_api(), "reused": reused}
