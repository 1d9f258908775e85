"""Client configuration: from arguments first, then the environment, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Literal

import httpx

from ._errors import ChatmaidConfigurationError
from ._keys import environment_of, mask_key
from ._ratelimit import TokenBucket, shared_bucket
from ._retry import RetryPolicy
from ._version import __version__

DEFAULT_BASE_URL = "https://developers-api.chatmaid.net"
DEFAULT_TIMEOUT = 10.0
DEFAULT_REQUESTS_PER_MINUTE = 100.0
USER_AGENT = f"chatmaid-connectors/{__version__} python-httpx/{httpx.__version__}"


class _Unset:
    """Marker for 'not given' where ``None`` means 'off'."""

    def __repr__(self) -> str:
        return "<default>"


UNSET = _Unset()


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs; the key never appears in its repr."""

    api_key: str = field(repr=False)
    base_url: str
    environment: Literal["test", "live"]
    timeout: httpx.Timeout
    retry: RetryPolicy
    bucket: TokenBucket | None

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
    base_url: str | None,
    timeout: float | httpx.Timeout,
    max_retries: int | None,
    deadline: float | None,
    requests_per_minute: float | None | _Unset,
    rate_limiter: TokenBucket | None | _Unset,
    retry: RetryPolicy | None,
) -> ClientConfig:
    """Resolve arguments and ``CHATMAID_*`` environment variables into a config."""
    key = api_key or os.environ.get("CHATMAID_API_KEY")
    if not key:
        raise ChatmaidConfigurationError(
            "no API key: pass api_key=... or set CHATMAID_API_KEY (sk_test_... or sk_live_...)"
        )
    key = key.strip()
    environment = environment_of(key)
    url = (base_url or os.environ.get("CHATMAID_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ChatmaidConfigurationError(
            f"base_url {url!r} must start with https:// (or http:// for a local sandbox)"
        )
    policy = retry or RetryPolicy()
    if max_retries is not None:
        policy = replace(policy, max_attempts=max_retries + 1)
    if deadline is not None:
        policy = replace(policy, deadline=deadline)
    return ClientConfig(
        api_key=key,
        base_url=url,
        environment=environment,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        retry=policy,
        bucket=_bucket(key, requests_per_minute, rate_limiter),
    )


def _bucket(
    key: str,
    requests_per_minute: float | None | _Unset,
    rate_limiter: TokenBucket | None | _Unset,
) -> TokenBucket | None:
    if not isinstance(rate_limiter, _Unset):
        return rate_limiter
    if requests_per_minute is None:
        return None
    per_minute = (
        DEFAULT_REQUESTS_PER_MINUTE if isinstance(requests_per_minute, _Unset) else requests_per_minute
    )
    return shared_bucket(key, per_minute)
