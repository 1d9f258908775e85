"""Checks a send request before it leaves the process, reporting every problem at once.

The rules are the API's own (API Reference, ``POST /v1/messages/send``), read
strictly: E.164 is ``+`` and 7 to 15 ASCII digits, the whole string; media URLs are
public ``https`` URLs (no user info, no loopback, private or link-local host: the API
fetches them). ``strict_numbers`` adds the *possible number* check (length per country
code), which refuses some numbers the docs use as examples (``+1987654321``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import phonenumbers

#: Counted in Unicode code points; the live API may count UTF-16 units (unverified).
MAX_CONTENT_LENGTH = 4096
MAX_IDEMPOTENCY_KEY_LENGTH = 64

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_LOCAL_HOSTNAMES = ("localhost", "localhost.localdomain")

E164_PROBLEM = "Phone number must be in E.164 format (e.g., +1987654321)"


def is_e164(number: object, *, strict: bool = False) -> bool:
    """True for an E.164 number such as ``+15557654321``: ``+``, then 7-15 ASCII digits.

    ``strict`` also asks for a *possible* number (its length fits its country code).
    """
    if not isinstance(number, str) or not _E164.fullmatch(number):
        return False
    return not strict or _is_possible_number(number)


@functools.lru_cache(maxsize=8192)
def _is_possible_number(number: str) -> bool:
    # Cached: phonenumbers' parse costs ~30 µs, and senders repeat the same recipients.
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
    strict_numbers: bool = False,
) -> list[str]:
    """Every problem with a send's fields, in the API's words; empty when valid."""
    problems: list[str] = []
    if not isinstance(to, str):
        problems.append("to must be a string")
    elif not is_e164(to, strict=strict_numbers):
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
    if not isinstance(url, str) or not url.isascii() or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a malformed port)
    except ValueError:
        return False
    if parts.scheme != "https" or not host or "@" in parts.netloc:
        return False
    return _is_public_host(host)


def _is_public_host(host: str) -> bool:
    """False for hosts the API could never fetch from the internet."""
    host = host.rstrip(".")
    if host in _LOCAL_HOSTNAMES or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host  # a name; a single label never resolves publicly
    return address.is_global
