"""Request validation: bodies and query strings, every problem reported at once (400).

The send rules are the sandbox's own reading of the API Reference, not the client's:
where the docs give the words (the E.164 message, Errors page) they are used exactly;
elsewhere the words are NestJS/class-validator's defaults (``docs/sandbox.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .responses import ApiError
from .state import USAGE_PERIODS
from .wire import E164_MESSAGE, is_e164

STATUSES = ("pending", "sent", "failed")
LIVE_STATUSES = ("pending", "sent", "delivered", "read", "failed")
ENVIRONMENTS = ("test", "live")
MAX_PAGE_SIZE = 100
MAX_CONTENT_LENGTH = 4096
MAX_IDEMPOTENCY_KEY_LENGTH = 64


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
    problems += _to_problems(body.get("to"))
    problems += _content_problems(content, media_urls)
    problems += _key_problems(key)
    if problems:
        raise ApiError(400, *problems)
    return SendRequest(
        from_phone_id=str(from_phone_id),
        to=str(body["to"]),
        content=content if isinstance(content, str) else None,
        media_urls=list(media_urls) if isinstance(media_urls, list) else [],
        idempotency_key=key if isinstance(key, str) else None,
    )


def _to_problems(to: object) -> list[str]:
    # class-validator reports every failed rule: a non-string fails both (Errors page).
    if not isinstance(to, str):
        return [E164_MESSAGE, "to must be a string"]
    return [] if is_e164(to) else [E164_MESSAGE]


def _content_problems(content: object, media_urls: object) -> list[str]:
    problems: list[str] = []
    if content is not None and not isinstance(content, str):
        problems.append("content must be a string")
    elif isinstance(content, str) and len(content) > MAX_CONTENT_LENGTH:
        problems.append(f"content must be shorter than or equal to {MAX_CONTENT_LENGTH} characters")
    urls = media_urls if isinstance(media_urls, list) else []
    if media_urls is not None and not isinstance(media_urls, list):
        problems.append("mediaUrls must be an array")
    if any(not _is_https_url(url) for url in urls):
        problems.append("each value in mediaUrls must be a URL address")
    if not content and not urls:
        problems.append("content should not be empty")
    return problems


def _is_https_url(url: object) -> bool:
    # "Public HTTPS URLs only": the scheme and a host are checked; reachability is not.
    if not isinstance(url, str) or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def _key_problems(key: object) -> list[str]:
    if key is None:
        return []
    if not isinstance(key, str):
        return ["idempotencyKey must be a string"]
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        return [
            f"idempotencyKey must be shorter than or equal to "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        ]
    return []


def parse_list_query(
    params: Mapping[str, str], default_environment: str, *, live: bool = False
) -> ListQuery:
    """The list filters and page; 400 listing every problem (``live``: SDK statuses)."""
    problems: list[str] = []
    page = _integer(params, "page", 1, 1, None, problems)
    limit = _integer(params, "limit", 20, 1, MAX_PAGE_SIZE, problems)
    status = _choice(params, "status", LIVE_STATUSES if live else STATUSES, problems)
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
