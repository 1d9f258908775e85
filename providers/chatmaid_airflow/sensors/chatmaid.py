"""``ChatmaidMessageSensor``: wait for a message to reach a target status.

Poke and reschedule modes poll from the worker; ``deferrable=True`` looks once, then
hands the wait to ``ChatmaidMessageTrigger``. A ``failed`` message fails the task at
once instead of waiting for the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout, conf
from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue

from chatmaid import Message, MessageStatus
from chatmaid_airflow.exceptions import ChatmaidDeliveryFailed
from chatmaid_airflow.hooks.chatmaid import ChatmaidHook
from chatmaid_airflow.links.chatmaid import ChatmaidMessageLink
from chatmaid_airflow.triggers.chatmaid import (
    DEFER_GRACE,
    ChatmaidMessageTrigger,
    message_from_event,
)

#: Statuses that confirm a message went out.
DELIVERED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


class ChatmaidMessageSensor(BaseSensorOperator):
    """Wait until a Chatmaid message's status is one of ``target_statuses``.

    The first terminal status the message reaches decides: a target status succeeds
    (the message, as the API returns it, goes to XCom), ``failed`` fails the task with
    the API's ``errorCode`` and ``errorMessage``, any other ends it with an error.

    Example::

        ChatmaidMessageSensor(
            task_id="wait_for_delivery",
            message_id="{{ ti.xcom_pull(task_ids='send', key='message_id') }}",
            deferrable=True,
        )

    :param message_id: the message to watch (templated).
    :param target_statuses: terminal statuses that count as success (default: sent,
        delivered, read).
    :param chatmaid_conn_id: the Chatmaid connection (templated).
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param max_poll_interval: in deferrable mode the trigger polls every
        ``poke_interval`` seconds at first, growing 1.5x up to this many seconds.
    """

    template_fields: Sequence[str] = ("message_id", "chatmaid_conn_id")
    ui_color = "#25d366"
    operator_extra_links = (ChatmaidMessageLink(),)

    def __init__(
        self,
        *,
        message_id: str,
        target_statuses: Collection[str] = DELIVERED,
        chatmaid_conn_id: str = ChatmaidHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_poll_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        unknown = sorted(set(target_statuses) - MessageStatus.TERMINAL)
        if not target_statuses or unknown:
            raise ValueError(
                f"target_statuses must be terminal statuses ({sorted(MessageStatus.TERMINAL)}); "
                f"got {sorted(target_statuses)}"
            )
        self.message_id = message_id
        self.target_statuses = frozenset(target_statuses)
        self.chatmaid_conn_id = chatmaid_conn_id
        self.deferrable = deferrable
        self.max_poll_interval = max_poll_interval
        self.message_url: str | None = None  # the watched message's link

    @cached_property
    def hook(self) -> ChatmaidHook:
        """The hook on ``chatmaid_conn_id``."""
        return ChatmaidHook(self.chatmaid_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the message."""
        self.message_url = self.hook.message_url(self.message_id)
        message = self.hook.get_message(self.message_id)
        self.log.info("Chatmaid message %s is %s", message.id, message.status)
        if not message.is_terminal:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._result(message))

    def execute(self, context: Context) -> Any:
        """Poke or reschedule as configured; when deferrable, look once, then defer."""
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if not first.is_done:
            self.defer(
                trigger=ChatmaidMessageTrigger(
                    self.message_id,
                    end_time=time.time() + self.timeout,
                    chatmaid_conn_id=self.chatmaid_conn_id,
                    poll_interval=self.poke_interval,
                    max_poll_interval=max(self.max_poll_interval, self.poke_interval),
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout) + DEFER_GRACE,
            )
        return first.xcom_value

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: the message in a target status, or the task fails."""
        self.message_url = self.hook.message_url(self.message_id)
        return self._result(message_from_event(event, timeout_error=AirflowSensorTimeout))

    def _result(self, message: Message) -> dict[str, Any]:
        if message.status in self.target_statuses:
            return message.to_api()
        if message.is_failed:
            raise ChatmaidDeliveryFailed(message)
        raise AirflowFailException(
            f"Chatmaid message {message.id} ended {message.status!r}, "
            f"not one of {sorted(self.target_statuses)}"
        )
