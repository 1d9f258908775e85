"""Checks a send request before it leaves the process, reporting every problem at once.

The rules are the API's own (API Reference, ``POST /v1/messages/send``); the sandbox
enforces the same ones with the same functions, so both sides agree on the wording.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import phonenumbers

MAX_CONTENT_LENGTH = 4096
MAX_IDEMPOTENCY_KEY_LENGTH = 64

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

E164_PROBLEM = "Phone number must be in E.164 format (e.g., +1987654321)"


def is_e164(number: object) -> bool:
    """True for a possible E.164 number such as ``+15557654321``.

    Uses the *possible* number check (length per country), not validity, so the
    documentation's ``+1555...`` examples pass as they do against the API.
    """
    return isinstance(number, str) and _is_possible_e164(number)


@functools.lru_cache(maxsize=8192)
def _is_possible_e164(number: str) -> bool:
    # Cached: phonenumbers' parse costs ~30 µs, and senders repeat the same recipients.
    if not _E164.match(number):
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(parsed))


def send_problems(
    *,
    to: object,
    content: object,
    media_urls: object,
    idempotency_key: object,
) -> list[str]:
    """Every problem with a send's fields, in the API's words; empty when valid."""
    problems: list[str] = []
    if not isinstance(to, str):
        problems.append("to must be a string")
    elif not is_e164(to):
        problems.append(f"{E164_PROBLEM}; got {to!r}")
    problems.extend(_content_problems(content, media_urls))
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str):
            problems.append("idempotencyKey must be a string")
        elif len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            problems.append(
                f"idempotencyKey must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters "
                f"(got {len(idempotency_key)})"
            )
    return problems


def _content_problems(content: object, media_urls: object) -> list[str]:
    problems: list[str] = []
    if content is not None and not isinstance(content, str):
        problems.append("content must be a string")
    elif isinstance(content, str) and len(content) > MAX_CONTENT_LENGTH:
        problems.append(
            f"content must be at most {MAX_CONTENT_LENGTH} characters (got {len(content)})"
        )
    urls: Sequence[object] = ()
    if media_urls is not None:
        if isinstance(media_urls, list | tuple):
            urls = media_urls
        else:
            problems.append("mediaUrls must be an array of strings")
    for index, url in enumerate(urls):
        if not _is_https_url(url):
            problems.append(f"mediaUrls[{index}] must be a public HTTPS URL; got {url!r}")
    if not content and not urls:
        problems.append("content or mediaUrls is required: give text, media, or both")
    return problems


def _is_https_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)
