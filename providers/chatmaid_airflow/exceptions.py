"""Exceptions the provider raises into Airflow tasks.

Core errors reach a task as one of two kinds, each naming the connection and the base
URL's host (never the key): ``ChatmaidFatalError`` where a retry cannot help (it is an
``AirflowFailException``: the task fails at once), ``ChatmaidRetryableError`` where it
can (transport errors, timeouts, 5xx, 429s the core gave up on). Both are also
``ChatmaidError``s, and the core's error is their ``__cause__``.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from chatmaid import (
    AuthenticationError,
    BadRequestError,
    ChatmaidAPIError,
    ChatmaidConfigurationError,
    ChatmaidError,
    ChatmaidTransportError,
    ChatmaidValidationError,
    IdempotencyConflictError,
    Message,
    NoConnectedPhoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)


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


class ChatmaidFatalError(AirflowFailException, ChatmaidError):
    """A Chatmaid error a retry cannot fix (401, 403, 400, 404, bad input, a missing or
    misconfigured connection, an idempotency conflict): the task fails without retries."""


class ChatmaidRetryableError(AirflowException, ChatmaidError):
    """A Chatmaid error that may pass (the API unreachable or failing, rate limits the
    core gave up on): the task is retried if it has retries left."""


#: What to do about each fatal error, where the core's message does not say already.
_FATAL: tuple[tuple[type[ChatmaidError], str | None], ...] = (
    (AuthenticationError, "check the API key in the connection's password field"),
    (
        PermissionDeniedError,
        "use a key with the scope this call needs, and check the account's subscription",
    ),
    (BadRequestError, "a retry would be refused the same way"),
    (NotFoundError, "check the message id, or the sender (from_phone, default_from_phone)"),
    (ChatmaidValidationError, "fix the task's arguments"),
    (ChatmaidConfigurationError, None),
    (IdempotencyConflictError, None),
    (NoConnectedPhoneError, None),
)

_RETRYABLE: tuple[tuple[type[ChatmaidError], str | None], ...] = (
    (ChatmaidTransportError, "check the connection's Base URL if this persists"),
    (RateLimitedError, "other clients may share the key's rate limit"),
)


def task_error(exc: ChatmaidError, *, where: str) -> ChatmaidFatalError | ChatmaidRetryableError:
    """The task error for a core error, its text prefixed with ``where`` (the connection
    and the host) and followed by what to do."""
    if isinstance(exc, ChatmaidFatalError | ChatmaidRetryableError):
        return exc
    for kind, hint in _FATAL:
        if isinstance(exc, kind):
            return ChatmaidFatalError(_text(where, exc, hint))
    if isinstance(exc, ChatmaidAPIError) and exc.status_code < 500 and exc.status_code != 429:
        return ChatmaidFatalError(_text(where, exc, "a retry would be refused the same way"))
    hint = next((hint for kind, hint in _RETRYABLE if isinstance(exc, kind)), None)
    return ChatmaidRetryableError(_text(where, exc, hint))


def _text(where: str, exc: ChatmaidError, hint: str | None) -> str:
    return f"{where}: {exc}" + (f"; {hint}" if hint else "")
