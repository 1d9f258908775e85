"""The API's answer shapes: the success envelope, the error envelope, the 429 body."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import pydantic_core
from starlette.requests import Request
from starlette.responses import JSONResponse

from .state import utcnow
from .wire import iso


class JsonResponse(JSONResponse):
    """A JSON answer rendered by pydantic-core: compact, UTF-8, several times faster."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


def ok(data: Any, status_code: int = 200) -> JsonResponse:
    """``{"success": true, "data": ...}``."""
    return JsonResponse({"success": True, "data": data}, status_code=status_code)


def requested_url(request: Request) -> str:
    """The URL as requested, query string included, not decoded (NestJS's ``req.url``)."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    return (raw + b"?" + query if query else raw).decode("latin-1")


def error_response(
    status_code: int,
    messages: list[str],
    path: str,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    """The documented error envelope (Errors page)."""
    body = {
        "success": False,
        "error": HTTPStatus(status_code).phrase,
        "message": messages,
        "statusCode": status_code,
        "timestamp": iso(utcnow()),
        "path": path,
    }
    return JsonResponse(body, status_code=status_code, headers=headers)


def rate_limited_response(retry_after: int, *, header: bool = False) -> JsonResponse:
    """The documented 429 body, exactly; a ``Retry-After`` header only if ``header``."""
    return JsonResponse(
        {"success": False, "error": "Rate limit exceeded", "retryAfter": retry_after},
        status_code=429,
        headers={"Retry-After": str(retry_after)} if header else None,
    )


class ApiError(Exception):
    """An error answer: raised anywhere in a request, rendered by the pipeline."""

    def __init__(self, status_code: int, *messages: str) -> None:
        super().__init__(status_code, *messages)
        self.status_code = status_code
        self.messages = list(messages)

    def response(self, path: str) -> JsonResponse:
        """The answer for a request to ``path``."""
        return error_response(self.status_code, self.messages, path)


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` whole seconds until one is allowed."""

    def __init__(self, retry_after: int, *, header: bool = False) -> None:
        super().__init__(429, "Rate limit exceeded")
        self.retry_after = retry_after
        self.header = header

    def response(self, path: str) -> JsonResponse:
        """The short 429 body the docs show (no envelope fields)."""
        return rate_limited_response(self.retry_after, header=self.header)
