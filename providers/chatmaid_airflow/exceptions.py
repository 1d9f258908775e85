"""Exceptions the provider raises into Airflow tasks."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowFailException

from chatmaid import Message


class ChatmaidDeliveryFailed(AirflowFailException):
    """A message ended ``failed``; carries the API's ``errorCode`` and ``errorMessage``.

    It fails the task without retries: a retry reuses the idempotency key, so the API
    would answer with the same failed message.
    """

    def __init__(self, message: Message) -> None:
        self.message_id = message.id
        self.error_code = message.error_code
        self.error_message = message.error_message
        super().__init__(
            f"Chatmaid message {message.id} to {message.to} failed: "
            f"{message.error_code or 'no error code'}: "
            f"{message.error_message or 'no error message'}"
        )
