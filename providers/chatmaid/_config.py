"""Client configuration: from arguments first, then the environment, then defaults."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Literal, TypedDict

import httpx

from ._errors import ChatmaidConfigurationError
from ._keys import environment_of, mask_key
from ._ratelimit import Clock, TokenBucket, shared_bucket
from ._retry import RetryPolicy
from ._version import __version__

DEFAULT_BASE_URL = "https://developers-api.chatmaid.net"
DEFAULT_TIMEOUT = 10.0
DEFAULT_REQUESTS_PER_MINUTE = 100.0
USER_AGENT = f"chatmaid-connectors/{__version__} python-httpx/{httpx.__version__}"


class ClientOptions(TypedDict, total=False):
    """Keyword options both clients take; an absent option takes its default.

    ``base_url`` (else ``CHATMAID_BASE_URL``, else the public host), ``timeout``
    (seconds, default 10), ``max_retries`` (retries after the first attempt, default 4),
    ``deadline`` (seconds for a whole call, waits included), ``requests_per_minute``
    (the key's shared bucket, default 100, ``None`` for off), ``rate_limiter`` (a bucket
    of your own instead), ``retry`` (a full ``RetryPolicy``), ``clock`` (for tests).
    """

    base_url: str | None
    timeout: float | httpx.Timeout
    max_retries: int | None
    deadline: float | None
    requests_per_minute: float | None
    rate_limiter: TokenBucket | None
    retry: RetryPolicy | None
    clock: Clock


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs; the key never appears in its repr."""

    api_key: str = field(repr=False)
    base_url: str
    environment: Literal["test", "live"]
    timeout: httpx.Timeout
    retry: RetryPolicy
    bucket: TokenBucket | None
    clock: Clock = field(default=time.monotonic, repr=False)

    @property
    def masked_key(self) -> str:
        """The key as it may be shown: ``sk_test_…abcd``."""
        return mask_key(self.api_key)

    def headers(self) -> dict[str, str]:
        """Headers every request carries."""
        return {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def __repr__(self) -> str:
        return (
            f"ClientConfig(api_key={self.masked_key!r}, base_url={self.base_url!r}, "
            f"environment={self.environment!r}, retry={self.retry!r}, bucket={self.bucket!r})"
        )


def build_config(api_key: str | None, options: ClientOptions) -> ClientConfig:
    """Resolve arguments and ``CHATMAID_*`` environment variables into a config."""
    key = api_key or os.environ.get("CHATMAID_API_KEY")
    if not key:
        raise ChatmaidConfigurationError(
            "no API key: pass api_key=... or set CHATMAID_API_KEY (sk_test_... or sk_live_...)"
        )
    key = key.strip()
    environment = environment_of(key)
    url = options.get("base_url") or os.environ.get("CHATMAID_BASE_URL") or DEFAULT_BASE_URL
    url = url.rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ChatmaidConfigurationError(
            f"base_url {url!r} must start with https:// (or http:// for a local sandbox)"
        )
    policy = options.get("retry") or RetryPolicy()
    max_retries = options.get("max_retries")
    if max_retries is not None:
        policy = replace(policy, max_attempts=max_retries + 1)
    deadline = options.get("deadline")
    if deadline is not None:
        policy = replace(policy, deadline=deadline)
    timeout = options.get("timeout", DEFAULT_TIMEOUT)
    return ClientConfig(
        api_key=key,
        base_url=url,
        environment=environment,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        retry=policy,
        bucket=_bucket(key, options),
        clock=options.get("clock", time.monotonic),
    )


def _bucket(key: str, options: ClientOptions) -> TokenBucket | None:
    if "rate_limiter" in options:
        return options["rate_limiter"]
    per_minute = options.get("requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE)
    return None if per_minute is None else shared_bucket(key, per_minute)
