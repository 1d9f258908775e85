"""The exception tree: one base, API errors by status, transport errors, webhook errors.

Every exception carries what a person needs to act (status, the server's messages,
the request path) and never the API key or a webhook secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import Message


class ChatmaidError(Exception):
    """Base of every error this package raises.

    ``idempotency_key`` is set on errors of a send: the key the send used. Retry with
    the same key and the API returns the message if the failed call did create it.
    """

    idempotency_key: str | None = None


class ChatmaidConfigurationError(ChatmaidError, ValueError):
    """The client was configured with something it cannot use (e.g. a malformed key)."""


class ChatmaidValidationError(ChatmaidError, ValueError):
    """A request is invalid. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[str], *, where: str = "request") -> None:
        self.problems = list(problems)
        self.where = where
        listed = "; ".join(self.problems)
        super().__init__(f"invalid {where}: {listed}")


class ChatmaidAPIError(ChatmaidError):
    """The API answered with an error status.

    Attributes: ``status_code``, ``error`` (the envelope's short reason), ``messages``
    (the envelope's ``message[]``), ``path`` (the request path).
    """

    def __init__(
        self,
        status_code: int,
        error: str,
        messages: Sequence[str] = (),
        *,
        path: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.messages = list(messages)
        self.path = path
        detail = "; ".join(self.messages) if self.messages else error
        where = f" on {path}" if path else ""
        super().__init__(f"HTTP {status_code} {error}{where}: {detail}")


class BadRequestError(ChatmaidAPIError):
    """400: the API rejected the payload or query; ``messages`` lists every problem."""

    @property
    def problems(self) -> list[str]:
        """The server's validation messages (same as ``messages``)."""
        return self.messages


class AuthenticationError(ChatmaidAPIError):
    """401: missing, invalid or expired API key."""


class PermissionDeniedError(ChatmaidAPIError):
    """403: the key lacks a scope, or a live key has no active subscription."""


class NotFoundError(ChatmaidAPIError):
    """404: unknown message, phone, or route."""


class RateLimitedError(ChatmaidAPIError):
    """429: the key's rate limit was exceeded. ``retry_after`` is in seconds, if given."""

    def __init__(
        self,
        status_code: int,
        error: str,
        messages: Sequence[str] = (),
        *,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status_code, error, messages, path=path)
        self.retry_after = retry_after


class ServerError(ChatmaidAPIError):
    """5xx: the API failed; safe to retry."""


class ChatmaidTransportError(ChatmaidError):
    """The request did not get an HTTP answer (connection refused or dropped, timeout)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{message} on {path}" if path else message)


class ChatmaidTimeoutError(ChatmaidTransportError):
    """The request timed out (connect, read, write or pool)."""


class DeadlineExceededError(ChatmaidTimeoutError):
    """The call's ``deadline`` ran out before an attempt could succeed."""


class IdempotencyConflictError(ChatmaidError):
    """The API returned, for this idempotency key, a message other than the one asked for.

    Keys are scoped per account: another deployment, environment or topic used the key
    first. ``differences`` maps each field to ``(asked, returned)``; ``message`` is the
    message the API holds for the key. Nothing was sent for this call.
    """

    def __init__(
        self, key: str, differences: Mapping[str, tuple[object, object]], message: Message
    ) -> None:
        self.idempotency_key = key
        self.differences = dict(differences)
        self.message = message
        listed = "; ".join(
            f"{name}: asked {asked!r}, got {returned!r}"
            for name, (asked, returned) in self.differences.items()
        )
        super().__init__(
            f"idempotency key {key!r} already belongs to message {message.id} ({listed}); "
            "nothing was sent. Use another key, or set an idempotency namespace per "
            "deployment"
        )


class NoConnectedPhoneError(ChatmaidError):
    """No phone of the account can send: none connected, or the one asked for is unknown."""


class DeliveryTimeoutError(ChatmaidError):
    """A message did not reach a terminal status within the time allowed."""

    def __init__(self, message_id: str, status: str, timeout: float) -> None:
        self.message_id = message_id
        self.status = status
        self.timeout = timeout
        super().__init__(
            f"message {message_id} still {status!r} after {timeout:g}s; "
            "raise the timeout or track it by webhook"
        )


class WebhookVerificationError(ChatmaidError):
    """A webhook delivery failed verification; the subclass says which check failed."""


class MissingSignatureError(WebhookVerificationError):
    """The ``X-Chatmaid-Signature`` header is absent or empty."""


class MalformedSignatureError(WebhookVerificationError):
    """The signature header is not ``t=<unix>,v1=<hex>[,v1=<hex>...]``."""


class TimestampOutsideToleranceError(WebhookVerificationError):
    """The signed timestamp is too old or too far in the future (a replay, or a bad clock)."""


class SignatureMismatchError(WebhookVerificationError):
    """No ``v1`` signature matches the body under the configured secret(s)."""


class InvalidWebhookPayloadError(WebhookVerificationError):
    """The body is signed correctly but is not a JSON webhook event."""
