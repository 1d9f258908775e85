"""What a failed send means for its event: dead-letter it, retry it, pause all, or stop.

A dead letter means "not sent, and it is this event's fault": nothing else may become
one. Faults of the network or of the API (transport errors, timeouts, 5xx, 429) are
retried with the same idempotency key until the API accepts the event. Faults of the
account (a 403, a live sender that is not connected) would refuse every event alike:
they pause the whole consumer until a probe succeeds. A 401 means the bridge's own key
is wrong: it stops. The table is in docs/kafka-bridge.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatmaid import (
    AuthenticationError,
    BadRequestError,
    ChatmaidConfigurationError,
    ChatmaidError,
    ChatmaidValidationError,
    IdempotencyConflictError,
    NoConnectedPhoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)

logger = logging.getLogger("chatmaid_kafka.failures")

#: Seconds before sending an event again after a round of attempts failed, by round
#: (the last one repeats); a 429's own ``retryAfter`` replaces it.
RETRY_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


class Action(enum.Enum):
    """What becomes of an event whose send failed."""

    DEAD_LETTER = "dead-letter"
    RETRY = "retry"
    PAUSE_ALL = "pause-all"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The action for one failure, and the dead letter's stage when it is one."""

    action: Action
    stage: str = "send"


def classify(error: ChatmaidError, *, named_sender: bool) -> Verdict:
    """The verdict for ``error``; ``named_sender``: the event chose its sender itself."""
    if isinstance(error, AuthenticationError | ChatmaidConfigurationError):
        return Verdict(Action.STOP)
    if isinstance(error, PermissionDeniedError):
        return Verdict(Action.PAUSE_ALL)
    if isinstance(error, IdempotencyConflictError):
        return Verdict(Action.DEAD_LETTER, "idempotency")
    if isinstance(error, ChatmaidValidationError):
        return Verdict(Action.DEAD_LETTER, "validation")
    if isinstance(error, NoConnectedPhoneError):
        # An unknown sender the event named is its fault; no connected phone at all,
        # or an unknown configured default, is the account's.
        return Verdict(Action.DEAD_LETTER if named_sender else Action.PAUSE_ALL, "resolve")
    if isinstance(error, BadRequestError):
        return Verdict(Action.PAUSE_ALL if _phone_not_connected(error) else Action.DEAD_LETTER)
    if isinstance(error, NotFoundError):
        return Verdict(Action.DEAD_LETTER)
    return Verdict(Action.RETRY)  # transport, timeout, deadline, 429, 5xx, anything else


def _phone_not_connected(error: BadRequestError) -> bool:
    """The docs' other 400 of a send: "phone not connected for live key"."""
    return any("not connected" in text.lower() for text in error.messages)


def retry_delay(error: ChatmaidError, round_: int) -> float:
    """Seconds before the next round of attempts for a retryable ``error``."""
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        return max(error.retry_after, RETRY_BACKOFF[0])
    return RETRY_BACKOFF[min(round_, len(RETRY_BACKOFF) - 1)]


class ApiHalt:
    """The account refuses every event (403, no connected sender): everything waits.

    Set by the first send that meets such a failure; while it is set the consumer
    pauses every partition and sends wait. One waiting send at a time probes: it is let
    through every ``probe_interval`` seconds, and the first send that succeeds clears
    the halt. Runs on the send loop; ``reason`` and ``since`` are read from any thread.
    """

    def __init__(
        self, probe_interval: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = probe_interval
        self._clock = clock
        self.reason: str | None = None
        self.since: float | None = None
        self._probing = False
        self._cleared: asyncio.Event | None = None

    async def wait(self, error: ChatmaidError | None = None) -> None:
        """Halt for ``error`` (if given); return when the caller should send again."""
        if error is not None and self.reason is None:
            self.reason = f"{type(error).__name__}: {error}"
            self.since = self._clock()
            self._cleared = asyncio.Event()
            logger.error(
                "the API refuses this account's sends (%s): every partition paused, "
                "probing every %gs",
                self.reason,
                self._interval,
            )
        while self.reason is not None and self._cleared is not None:
            if not self._probing:
                self._probing = True
                try:
                    await asyncio.sleep(self._interval)
                finally:
                    self._probing = False
                return  # this caller's send is the probe
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cleared.wait(), self._interval)

    def clear(self) -> None:
        """A send succeeded: the cause is gone, everything resumes."""
        if self.reason is None or self._cleared is None:
            return
        logger.warning(
            "the API accepts sends again after %.0fs (%s): resuming",
            self._clock() - (self.since or self._clock()),
            self.reason,
        )
        self.reason = self.since = None
        self._cleared.set()
