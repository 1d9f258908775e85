"""The one retry policy: which failures are retried, how long to wait, when to give up.

- 429: always retried (the request was not processed); wait ``retryAfter`` from the
  body or the ``Retry-After`` header, capped, plus jitter; the key's bucket is held
  for that time so other requests on the key wait too. A 429 is flow control, not a
  failed attempt: it counts against ``max_rate_limit_waits``, not ``max_attempts``.
- Transport errors, timeouts, 5xx: retried with exponential backoff and full jitter,
  on every endpoint (a send always carries an idempotency key, so it is safe).
- Any other 4xx: never retried.
- ``deadline`` bounds the whole call: limiter waits, 429 waits and each attempt's
  timeouts are capped by the time left, and no wait is started that would outlive it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import httpx

from ._errors import ChatmaidError, DeadlineExceededError, RateLimitedError, ServerError
from ._errors import ChatmaidTransportError as _TransportError
from ._flow import Flow, Send, Sleep
from ._observers import (
    AttemptFinished,
    AttemptStarted,
    GaveUp,
    GiveUpReason,
    LimiterWait,
    Observers,
    RateLimitWait,
    RetryReason,
    RetryScheduled,
)
from ._ratelimit import Clock, TokenBucket
from ._responses import error_from_response, error_from_transport

#: How far ahead a request may book its rate-limiter slot; later ones sleep and ask again.
LIMITER_HORIZON = 1.0

logger = logging.getLogger("chatmaid")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``deadline`` bounds the whole call, waits included (seconds)."""

    max_attempts: int = 5
    max_rate_limit_waits: int = 10
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    retry_after_jitter: float = 0.1
    deadline: float | None = None
    random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.max_rate_limit_waits < 0:
            raise ValueError(
                f"max_rate_limit_waits must be at least 0, got {self.max_rate_limit_waits}"
            )
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


@dataclass(frozen=True)
class Attempts:
    """Everything ``send_with_retries`` needs besides the request."""

    policy: RetryPolicy
    bucket: TokenBucket | None
    clock: Clock
    timeout: httpx.Timeout
    observers: Observers


def send_with_retries(
    request: httpx.Request, how: Attempts, *, idempotency_key: str | None = None
) -> Flow[httpx.Response]:
    """Send ``request`` until it succeeds or the policy gives up (raising the last error)."""
    call = _Call(request, how, idempotency_key)
    while True:
        yield from call.wait_for_limiter()
        call.start_attempt()
        outcome = yield Send(request)
        error = call.finish_attempt(outcome)
        if error is None:
            assert isinstance(outcome, httpx.Response)
            return outcome
        delay = call.delay_before_retry(error)
        if isinstance(error, RateLimitedError) and how.bucket is not None:
            # Hold the key's shared bucket instead of sleeping here: the next reserve()
            # waits out the delay, and so does every other request on this key.
            how.bucket.hold(delay)
        else:
            yield Sleep(delay)


class _Call:
    """The state of one call across its attempts: counts, deadline, the last error."""

    def __init__(self, request: httpx.Request, how: Attempts, key: str | None) -> None:
        self.request = request
        self.how = how
        self.key = key
        self.ends_at = None if how.policy.deadline is None else how.clock() + how.policy.deadline
        self.attempts = 0  # attempts that count against max_attempts (not 429s)
        self.rate_limited = 0
        self.sent = 0
        self.started_at = 0.0
        self.last_error: ChatmaidError | None = None

    @property
    def _where(self) -> tuple[str, str, str | None]:
        return self.request.method, self.request.url.path, self.key

    def _left(self) -> float | None:
        return None if self.ends_at is None else self.ends_at - self.how.clock()

    def wait_for_limiter(self) -> Flow[None]:
        """Book a slot of the bucket, at most ``LIMITER_HORIZON`` ahead: further out,
        sleep and ask again, so that no booking outlives a change of the bucket's rate
        (a process's share of a key) by more than the horizon."""
        bucket = self.how.bucket
        announced = False
        while True:
            left = self._left()
            if left is not None and left <= 0:
                raise self._give_up(self._deadline_error("before the next attempt"), "deadline")
            if bucket is None:
                return
            ahead = bucket.next_slot_in()
            if left is not None and ahead > left:
                raise self._give_up(self._deadline_error("waiting for the rate limit"), "deadline")
            if not announced and ahead > 0:
                self.how.observers.emit(LimiterWait(*self._where, seconds=ahead))
                announced = True
            wait = bucket.try_reserve(max_wait=LIMITER_HORIZON)
            if wait is not None:
                if wait > 0:
                    yield Sleep(wait)
                return
            yield Sleep(
                min(ahead - LIMITER_HORIZON, LIMITER_HORIZON)
                if ahead > LIMITER_HORIZON
                else LIMITER_HORIZON
            )

    def start_attempt(self) -> None:
        self.sent += 1
        left = self._left()
        if left is not None:
            self.request.extensions["timeout"] = _capped(self.how.timeout, left)
        self.started_at = self.how.clock()
        self.how.observers.emit(AttemptStarted(*self._where, attempt=self.sent))

    def finish_attempt(self, outcome: object) -> ChatmaidError | None:
        error: ChatmaidError | None
        status: int | None = None
        if isinstance(outcome, httpx.TransportError):
            error = error_from_transport(outcome, self.request.url.path)
        else:
            assert isinstance(outcome, httpx.Response)
            status = outcome.status_code
            error = error_from_response(outcome)
        if error is not None:
            error.idempotency_key = self.key
            self.last_error = error
        self.how.observers.emit(
            AttemptFinished(
                *self._where,
                attempt=self.sent,
                status_code=status,
                error=error,
                elapsed=self.how.clock() - self.started_at,
            )
        )
        return error

    def delay_before_retry(self, error: ChatmaidError) -> float:
        """The wait before the next attempt; raises ``error`` when the call gives up."""
        policy = self.how.policy
        is_429 = isinstance(error, RateLimitedError)
        if is_429:
            self.rate_limited += 1
        else:
            self.attempts += 1
        delay = policy.delay_before_retry(error, self.rate_limited if is_429 else self.attempts)
        if delay is None:
            raise self._give_up(error, "not_retryable")
        if (is_429 and self.rate_limited > policy.max_rate_limit_waits) or (
            not is_429 and self.attempts >= policy.max_attempts
        ):
            raise self._give_up(error, "max_attempts")
        left = self._left()
        if left is not None and delay >= left:
            raise self._give_up(error, "deadline")
        reason = _reason(error)
        self.how.observers.emit(
            RetryScheduled(*self._where, attempt=self.sent, reason=reason, delay=delay, error=error)
        )
        if isinstance(error, RateLimitedError):
            self.how.observers.emit(RateLimitWait(*self._where, seconds=delay, error=error))
        # A 429 is flow control (INFO); anything else is a fault worth a WARNING.
        logger.log(
            logging.INFO if is_429 else logging.WARNING,
            "chatmaid %s %s: attempt %d failed (%s); retrying in %.2fs",
            self.request.method,
            self.request.url.path,
            self.sent,
            error,
            delay,
        )
        return delay

    def _deadline_error(self, doing: str) -> ChatmaidError:
        deadline = self.how.policy.deadline
        error = DeadlineExceededError(
            f"the {deadline:g}s deadline ran out {doing}"
            + (f" (last error: {self.last_error})" if self.last_error else ""),
            path=self.request.url.path,
        )
        error.idempotency_key = self.key
        return error

    def _give_up(self, error: ChatmaidError, reason: GiveUpReason) -> ChatmaidError:
        self.how.observers.emit(GaveUp(*self._where, attempt=self.sent, reason=reason, error=error))
        return error


def _reason(error: ChatmaidError) -> RetryReason:
    if isinstance(error, RateLimitedError):
        return "rate_limited"
    if isinstance(error, ServerError):
        return "server_error"
    return "transport_error"


def _capped(timeout: httpx.Timeout, left: float) -> dict[str, float | None]:
    """The attempt's timeouts, none longer than the time left of the deadline."""
    return {
        name: left if value is None else min(value, left)
        for name, value in timeout.as_dict().items()
    }
