"""The one retry policy: which failures are retried, how long to wait, when to give up.

- 429: always retried (the request was not processed); wait ``retryAfter`` from the
  body or the ``Retry-After`` header, capped, plus jitter; the key's bucket is held
  for that time so other requests on the key wait too.
- Transport errors, timeouts, 5xx: retried with exponential backoff and full jitter,
  on every endpoint (a send always carries an idempotency key, so it is safe).
- Any other 4xx: never retried.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import httpx

from ._errors import ChatmaidError, RateLimitedError, ServerError
from ._errors import ChatmaidTransportError as _TransportError
from ._flow import Flow, Send, Sleep
from ._ratelimit import Clock, TokenBucket
from ._responses import error_from_response, error_from_transport

logger = logging.getLogger("chatmaid")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``deadline`` bounds the whole call, waits included (seconds)."""

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    retry_after_jitter: float = 0.1
    deadline: float | None = None
    random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be positive seconds, got {self.deadline}")

    def delay_before_retry(self, error: ChatmaidError, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` if not retryable."""
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            capped = min(error.retry_after, self.retry_after_max)
            return capped * (1 + self.random.uniform(0, self.retry_after_jitter))
        if isinstance(error, RateLimitedError | ServerError | _TransportError):
            ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
            return self.random.uniform(0, ceiling)
        return None


def send_with_retries(
    request: httpx.Request,
    policy: RetryPolicy,
    bucket: TokenBucket | None,
    clock: Clock,
) -> Flow[httpx.Response]:
    """Send ``request`` until it succeeds or the policy gives up (raising the last error)."""
    started = clock()
    path = request.url.path
    attempt = 0
    while True:
        attempt += 1
        if bucket is not None:
            wait = bucket.reserve()
            if wait > 0:
                yield Sleep(wait)
        outcome = yield Send(request)
        error: ChatmaidError
        if isinstance(outcome, httpx.TransportError):
            error = error_from_transport(outcome, path)
        else:
            assert isinstance(outcome, httpx.Response)
            api_error = error_from_response(outcome)
            if api_error is None:
                return outcome
            error = api_error
        delay = policy.delay_before_retry(error, attempt)
        if delay is None or attempt >= policy.max_attempts:
            raise error
        if policy.deadline is not None and clock() - started + delay > policy.deadline:
            raise error
        # A 429 is flow control (INFO); anything else is a fault worth a WARNING.
        logger.log(
            logging.INFO if isinstance(error, RateLimitedError) else logging.WARNING,
            "chatmaid %s %s: attempt %d failed (%s); retrying in %.2fs",
            request.method,
            path,
            attempt,
            error,
            delay,
        )
        if isinstance(error, RateLimitedError) and bucket is not None:
            # Hold the key's shared bucket instead of sleeping here: the next reserve()
            # waits out the delay, and so does every other request on this key.
            bucket.hold(delay)
        else:
            yield Sleep(delay)
