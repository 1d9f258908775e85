"""Turning HTTP answers into payloads or typed errors (the error envelope, the 429 body)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from ._errors import (
    AuthenticationError,
    BadRequestError,
    ChatmaidAPIError,
    ChatmaidTimeoutError,
    ChatmaidTransportError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)
from ._models import ErrorEnvelope

_ERRORS_BY_STATUS: dict[int, type[ChatmaidAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}


def payload_of(response: httpx.Response) -> Any:
    """The ``data`` of a success envelope; raises ``ServerError`` for a malformed one."""
    path = response.request.url.path
    try:
        body = response.json()
    except ValueError:
        raise ServerError(
            response.status_code, "Malformed response", ["the body is not JSON"], path=path
        ) from None
    if not isinstance(body, dict) or "data" not in body:
        raise ServerError(
            response.status_code,
            "Malformed response",
            ["the body is not a success envelope with 'data'"],
            path=path,
        )
    return body["data"]


def error_from_response(response: httpx.Response) -> ChatmaidAPIError | None:
    """The typed error an answer stands for, or ``None`` for a success."""
    if response.is_success:
        return None
    status = response.status_code
    envelope = _envelope(response)
    path = envelope.path or response.request.url.path
    if status == 429:
        return RateLimitedError(
            status,
            envelope.error,
            envelope.message,
            path=path,
            retry_after=envelope.retry_after or _retry_after_header(response),
        )
    error_class = _ERRORS_BY_STATUS.get(status)
    if error_class is None:
        error_class = ServerError if status >= 500 else ChatmaidAPIError
    return error_class(status, envelope.error, envelope.message, path=path)


def error_from_transport(exc: httpx.TransportError, path: str) -> ChatmaidTransportError:
    """A transport failure as this package's error (the request's headers stay out)."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ChatmaidTimeoutError(f"{kind}: the request timed out", path=path)
    return ChatmaidTransportError(f"{kind}: {exc}", path=path)


def _envelope(response: httpx.Response) -> ErrorEnvelope:
    try:
        body = response.json()
        if isinstance(body, dict):
            return ErrorEnvelope.model_validate(body)
    except (ValueError, ValidationError):
        pass
    return ErrorEnvelope(error=response.reason_phrase or "Error", message=[])


def _retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: rare for APIs; fall back to backoff
