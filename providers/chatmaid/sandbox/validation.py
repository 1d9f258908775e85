"""Request validation: bodies and query strings, every problem reported at once (400).

The send rules are the core's ``send_problems``, so the sandbox and the client word
each problem the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .._validation import send_problems
from .responses import ApiError
from .state import USAGE_PERIODS

STATUSES = ("pending", "sent", "failed")
ENVIRONMENTS = ("test", "live")
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A valid ``POST /v1/messages/send`` body."""

    from_phone_id: str
    to: str
    content: str | None
    media_urls: list[str]
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Valid ``GET /v1/messages`` query parameters."""

    page: int
    limit: int
    environment: str
    status: str | None
    phone_number_id: str | None


def json_object(raw: bytes) -> dict[str, object]:
    """A request body parsed as a JSON object; 400 otherwise."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(400, "body must be a JSON object (it is not valid JSON)") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def parse_send(body: Mapping[str, object]) -> SendRequest:
    """The send request in ``body``; 400 listing every problem."""
    from_phone_id = body.get("fromPhoneId")
    problems = []
    if from_phone_id is None or from_phone_id == "":
        problems.append("fromPhoneId is required")
    elif not isinstance(from_phone_id, str):
        problems.append("fromPhoneId must be a string")
    content, media_urls = body.get("content"), body.get("mediaUrls")
    key = body.get("idempotencyKey")
    problems += send_problems(
        to=body.get("to"), content=content, media_urls=media_urls, idempotency_key=key
    )
    if problems:
        raise ApiError(400, *problems)
    return SendRequest(
        from_phone_id=str(from_phone_id),
        to=str(body["to"]),
        content=content if isinstance(content, str) else None,
        media_urls=list(media_urls) if isinstance(media_urls, list) else [],
        idempotency_key=key if isinstance(key, str) else None,
    )


def parse_list_query(params: Mapping[str, str], default_environment: str) -> ListQuery:
    """The list filters and page; 400 listing every problem."""
    problems: list[str] = []
    page = _integer(params, "page", 1, 1, None, problems)
    limit = _integer(params, "limit", 20, 1, MAX_PAGE_SIZE, problems)
    status = _choice(params, "status", STATUSES, problems)
    environment = _choice(params, "environment", ENVIRONMENTS, problems)
    if problems:
        raise ApiError(400, *problems)
    return ListQuery(
        page=page,
        limit=limit,
        environment=environment or default_environment,
        status=status,
        phone_number_id=params.get("phoneNumberId") or None,
    )


def parse_period(params: Mapping[str, str]) -> str:
    """The usage ``period`` (default ``month``); 400 for any other value."""
    problems: list[str] = []
    period = _choice(params, "period", tuple(USAGE_PERIODS), problems)
    if problems:
        raise ApiError(400, *problems)
    return period or "month"


def _integer(
    params: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: list[str],
) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() else None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        problems.append(f"{name} must be an integer {bounds} (got {raw!r})")
        return default
    return value


def _choice(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], problems: list[str]
) -> str | None:
    raw = params.get(name)
    if raw is not None and raw not in allowed:
        problems.append(f"{name} must be one of {', '.join(allowed)} (got {raw!r})")
        return None
    return raw
