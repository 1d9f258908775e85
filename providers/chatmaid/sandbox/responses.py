"""The API's answer shapes: the success envelope, the error envelope, the 429 body."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from .state import iso, utcnow


def ok(data: Any, status_code: int = 200) -> JSONResponse:
    """``{"success": true, "data": ...}``."""
    return JSONResponse({"success": True, "data": data}, status_code=status_code)


def error_response(
    status_code: int,
    messages: list[str],
    path: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The documented error envelope (Errors page)."""
    body = {
        "success": False,
        "error": HTTPStatus(status_code).phrase,
        "message": messages,
        "statusCode": status_code,
        "timestamp": iso(utcnow()),
        "path": path,
    }
    return JSONResponse(body, status_code=status_code, headers=headers)


def rate_limited_response(retry_after: int) -> JSONResponse:
    """The documented 429 body, exactly, plus a ``Retry-After`` header."""
    return JSONResponse(
        {"success": False, "error": "Rate limit exceeded", "retryAfter": retry_after},
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )


class ApiError(Exception):
    """An error answer: raised anywhere in a request, rendered by the pipeline."""

    def __init__(self, status_code: int, *messages: str) -> None:
        super().__init__(status_code, *messages)
        self.status_code = status_code
        self.messages = list(messages)

    def response(self, path: str) -> JSONResponse:
        """The answer for a request to ``path``."""
        return error_response(self.status_code, self.messages, path)


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` whole seconds until one is allowed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "Rate limit exceeded")
        self.retry_after = retry_after

    def response(self, path: str) -> JSONResponse:
        """The short 429 body the docs show (no envelope fields)."""
        return rate_limited_response(self.retry_after)
