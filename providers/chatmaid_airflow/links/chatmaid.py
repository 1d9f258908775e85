"""``ChatmaidMessageLink``: the operator's and the sensor's button to their message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class ChatmaidMessageLink(BaseOperatorLink):
    """The message a task sent or watched, at the connection's ``message_url``.

    Airflow asks for the link in the worker when the task ends and keeps it; it is
    empty when the connection has no ``message_url`` or the task got no message.
    """

    name = "Chatmaid message"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task recorded (``message_url`` on the operator), else empty."""
        url = getattr(operator, "message_url", None)
        return url if isinstance(url, str) else ""
