"""``ChatmaidMessageTrigger``: wait in the triggerer until a message is ``sent`` or ``failed``.

The trigger only polls (a triggerer restart re-runs it, so it must never send). It waits
with the core's ``wait_for_terminal`` on the event loop's shared async client, so 429s,
retries and the key's rate limit are the core's, and it stops at an absolute end time,
so a restarted trigger does not start its timeout over.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from chatmaid import ChatmaidError, DeliveryTimeoutError, Message
from chatmaid_airflow.exceptions import ChatmaidFatalError, ChatmaidRetryableError
from chatmaid_airflow.hooks.chatmaid import ChatmaidHook

# Even past its end time a (re)started trigger looks once before reporting a timeout.
_LAST_LOOK = 0.001
#: Extra time a deferring task gives the scheduler beyond the trigger's own end time,
#: so the trigger's clearer timeout event always comes first.
DEFER_GRACE = timedelta(minutes=1)


class ChatmaidMessageTrigger(BaseTrigger):
    """Poll one message until its status is terminal, then yield one event.

    The event is ``{"status": "done", "message": {...}}`` with the message as the API
    returns it, ``{"status": "timeout", ...}`` at ``end_time``, or
    ``{"status": "error", "error": ..., "retryable": ...}`` (``retryable`` is false where a
    retry cannot help, e.g. a 401); ``message_from_event`` turns it back into a
    ``Message`` or the exception that fails the task.

    :param message_id: the message to watch.
    :param end_time: when to stop, as a Unix timestamp (wall clock, survives restarts).
    :param chatmaid_conn_id: the Chatmaid connection.
    :param poll_interval: seconds before the second poll, growing by ``backoff``...
    :param max_poll_interval: ...up to this many seconds.
    :param backoff: the factor between successive poll intervals.
    """

    def __init__(
        self,
        message_id: str,
        end_time: float,
        chatmaid_conn_id: str = ChatmaidHook.default_conn_name,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        backoff: float = 1.5,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.message_id = message_id
        self.end_time = end_time
        self.chatmaid_conn_id = chatmaid_conn_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.backoff = backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the exact ``__init__`` arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "message_id": self.message_id,
                "end_time": self.end_time,
                "chatmaid_conn_id": self.chatmaid_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "backoff": self.backoff,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait, then yield the one event."""
        yield TriggerEvent(await self._wait())  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        base = {"message_id": self.message_id}
        hook = ChatmaidHook(self.chatmaid_conn_id)
        try:
            async with hook.async_client() as client:
                with hook.task_errors():
                    try:
                        message = await client.wait_for_terminal(
                            self.message_id,
                            timeout=max(self.end_time - time.time(), _LAST_LOOK),
                            poll_interval=self.poll_interval,
                            max_poll_interval=self.max_poll_interval,
                            backoff=self.backoff,
                        )
                    except DeliveryTimeoutError as exc:
                        return {**base, **self._timeout(exc.status)}
        except Exception as exc:  # reported to the task, which fails with it
            error = str(exc) if isinstance(exc, ChatmaidError) else f"{type(exc).__name__}: {exc}"
            retryable = not isinstance(exc, AirflowFailException)
            return {**base, "status": "error", "error": error, "retryable": retryable}
        self.log.info("Chatmaid message %s is %s", message.id, message.status)
        return {**base, "status": "done", "message": message.to_api()}

    def _timeout(self, status: str) -> dict[str, Any]:
        end = datetime.fromtimestamp(self.end_time, timezone.utc).isoformat(timespec="seconds")
        error = (
            f"Chatmaid message {self.message_id} still {status!r} at the end of its "
            f"wait ({end}); raise the timeout or track it by webhook"
        )
        return {"status": "timeout", "last_status": status, "error": error}


def message_from_event(
    event: dict[str, Any], *, timeout_error: type[AirflowException] = AirflowException
) -> Message:
    """The final message of a ``ChatmaidMessageTrigger`` event; raises for timeouts and errors."""
    status = event.get("status")
    if status == "done":
        return Message.model_validate(event["message"])
    if status == "timeout":
        raise timeout_error(event["error"])
    error = (
        f"waiting for Chatmaid message {event.get('message_id')} failed: "
        f"{event.get('error', event)}"
    )
    if event.get("retryable") is False:
        raise ChatmaidFatalError(error)
    raise ChatmaidRetryableError(error)
