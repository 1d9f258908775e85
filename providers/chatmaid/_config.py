"""Client configuration: from arguments first, then the environment, then defaults."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypedDict

import httpx

from ._errors import ChatmaidConfigurationError
from ._keys import environment_of, mask_key
from ._observers import Observer, Observers
from ._ratelimit import Clock, TokenBucket, shared_bucket
from ._retry import RetryPolicy
from ._version import __version__
from .idempotency import check_namespace

DEFAULT_BASE_URL = "https://developers-api.chatmaid.net"
DEFAULT_TIMEOUT = 10.0
DEFAULT_REQUESTS_PER_MINUTE = 100.0
DEFAULT_MAX_CONNECTIONS = 100
USER_AGENT = f"chatmaid-connectors/{__version__} python-httpx/{httpx.__version__}"


class ClientOptions(TypedDict, total=False):
    """The clients' keyword options as one typed mapping, for adapters that build them
    from their own settings (``ChatmaidClient(key, **options)``); see the clients'
    signatures for each option's meaning and default."""

    base_url: str | None
    timeout: float | httpx.Timeout
    max_retries: int | None
    deadline: float | None
    requests_per_minute: float | None
    rate_limiter: TokenBucket | None
    retry: RetryPolicy | None
    observers: Sequence[Observer]
    idempotency_namespace: str | None
    strict_numbers: bool
    max_connections: int


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs; the key never appears in its repr."""

    api_key: str = field(repr=False)
    base_url: str
    environment: Literal["test", "live"]
    timeout: httpx.Timeout
    retry: RetryPolicy
    bucket: TokenBucket | None
    observers: Observers = field(default_factory=Observers, repr=False)
    idempotency_namespace: str | None = None
    strict_numbers: bool = False
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


def build_config(
    api_key: str | None,
    *,
    base_url: str | None,
    timeout: float | httpx.Timeout,
    max_retries: int | None,
    deadline: float | None,
    requests_per_minute: float | None,
    rate_limiter: TokenBucket | None,
    retry: RetryPolicy | None,
    observers: Sequence[Observer],
    idempotency_namespace: str | None,
    strict_numbers: bool,
    clock: Clock,
) -> ClientConfig:
    """Resolve arguments and ``CHATMAID_*`` environment variables into a config."""
    key = api_key or os.environ.get("CHATMAID_API_KEY")
    if not key:
        raise ChatmaidConfigurationError(
            "no API key: pass api_key=... or set CHATMAID_API_KEY (sk_test_... or sk_live_...)"
        )
    key = key.strip()
    environment = environment_of(key)
    url = base_url or os.environ.get("CHATMAID_BASE_URL") or DEFAULT_BASE_URL
    url = url.rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ChatmaidConfigurationError(
            f"base_url {url!r} must start with https:// (or http:// for a local sandbox)"
        )
    if idempotency_namespace is not None:
        check_namespace(idempotency_namespace, what="idempotency_namespace")
    policy = retry or RetryPolicy()
    if max_retries is not None:
        policy = replace(policy, max_attempts=max_retries + 1)
    if deadline is not None:
        policy = replace(policy, deadline=deadline)
    if rate_limiter is None and requests_per_minute is not None:
        rate_limiter = shared_bucket(key, requests_per_minute)
    return ClientConfig(
        api_key=key,
        base_url=url,
        environment=environment,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        retry=policy,
        bucket=rate_limiter,
        observers=Observers(observers),
        idempotency_namespace=idempotency_namespace,
        strict_numbers=strict_numbers,
        clock=clock,
    )
