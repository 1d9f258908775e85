"""One consumed record to its outcome: sent (accepted + correlation records) or dead-lettered.

The offset is finished only once Kafka acknowledged the outcome's records; if it does
not, they are produced again (with backoff) until it does or the partition is revoked.
Retries of one API call are the core's (``RetryPolicy``, ``deadline``); when a round of
them ends without an answer for the event, what follows is ``failures.classify``'s:
only a refusal that is the event's own fault is dead-lettered; a transient fault sends
the event again with the same key (its partition paused meanwhile), a fault of the
account halts every partition until a probe succeeds, and a 401 stops the bridge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from chatmaid import AsyncChatmaidClient, ChatmaidError, Message

from .events import InvalidEventError, NotifyEvent, idempotency_key, parse_notify_event
from .failures import Action, ApiHalt, classify, retry_delay
from .metrics import BridgeMetrics
from .producer import Publisher, too_large
from .records import (
    Consumed,
    Correlation,
    OutgoingRecord,
    SourceRecord,
    accepted_record,
    dead_letter,
    fit_record,
)

logger = logging.getLogger("chatmaid_kafka.processor")

#: Seconds before producing an outcome again, by attempt (the last one repeats).
REPUBLISH_BACKOFF = (0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class OutputTopics:
    """Where outcomes go."""

    results: str
    dead_letters: str
    correlations: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an event: the records to produce, and what they stand for."""

    records: list[OutgoingRecord]
    dead_letter_stage: str | None = None
    message_id: str | None = None
    correlation: Correlation = field(default_factory=Correlation)


class _Stop(Exception):
    """A failure that stops the bridge (a 401): no outcome for this event."""


class EventProcessor:
    """Sends one notify event through the core client until it has an outcome."""

    def __init__(
        self,
        *,
        client: AsyncChatmaidClient,
        publisher: Publisher,
        topics: OutputTopics,
        metrics: BridgeMetrics,
        halt: ApiHalt,
        on_fatal: Callable[[BaseException], None],
        on_correlation: Callable[[str, Correlation], None] | None = None,
        default_from: str | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._topics = topics
        self._metrics = metrics
        self._halt = halt
        self._on_fatal = on_fatal
        self._on_correlation = on_correlation
        self._default_from = default_from
        self._sleep = sleep

    async def handle(self, consumed: Consumed) -> None:
        """Process ``consumed`` and publish its outcome (the dispatcher calls this)."""
        tracker, source = consumed.tracker, consumed.record
        if not tracker.begin():
            return  # the partition is being revoked or the bridge stops: not started
        try:
            outcome = await self.outcome(consumed)
        except _Stop as stop:
            tracker.give_up()
            self._on_fatal(stop.__cause__ or stop)
            return
        except asyncio.CancelledError:
            tracker.give_up()
            raise
        except Exception as exc:
            logger.exception("unexpected failure on %s", _where(source))
            outcome = self._dead_letter(source, "internal", exc)
        finally:
            tracker.unblock(source.offset)
        if outcome is None:
            tracker.give_up()  # stopped while waiting: the next owner sends it
            return
        self._publish(consumed, outcome, asyncio.get_running_loop(), attempt=0)

    async def outcome(self, consumed: Consumed) -> Outcome | None:
        """Send the event (or find it invalid), as often as it takes.

        ``None`` if its partition stopped (revoked, shutdown) before the API answered.
        """
        source = consumed.record
        try:
            event = parse_notify_event(source.value)
        except InvalidEventError as exc:
            return self._dead_letter(source, exc.stage, exc)
        key = idempotency_key(event, source, derive=self._client.idempotency_key)
        round_ = 0
        while True:
            if self._halt.reason is not None:
                await self._halt.wait()
            try:
                message = await self._send(event, key)
            except ChatmaidError as exc:
                verdict = classify(exc, named_sender=event.sender is not None)
                if verdict.action is Action.DEAD_LETTER:
                    return self._dead_letter(
                        source, verdict.stage, exc, event_id=event.event_id, key=key
                    )
                if verdict.action is Action.STOP:
                    raise _Stop() from exc
                self._metrics.send_rounds_failed.labels(verdict.action.value).inc()
                if consumed.tracker.stopped:
                    return None
                if verdict.action is Action.PAUSE_ALL:
                    await self._halt.wait(exc)
                else:
                    await self._wait_to_retry(consumed, exc, round_)
                round_ += 1
                continue
            self._halt.clear()
            return self._accepted(event, key, message)

    async def _send(self, event: NotifyEvent, key: str) -> Message:
        return await self._client.send_message(
            from_phone=event.sender or self._default_from,
            to=event.to,
            content=event.content,
            media_urls=event.media_urls,
            idempotency_key=key,
        )

    async def _wait_to_retry(self, consumed: Consumed, error: ChatmaidError, round_: int) -> None:
        tracker, source = consumed.tracker, consumed.record
        reason = f"{type(error).__name__}: {error}"
        tracker.block(source.offset, reason, time.monotonic())
        since, _ = tracker.blockage() or (time.monotonic(), reason)
        delay = retry_delay(error, round_)
        logger.warning(
            "%s blocked for %.0fs: %s at %s; sending it again in %.0fs (same idempotency key)",
            f"{source.topic}[{source.partition}]",
            time.monotonic() - since,
            reason,
            _where(source),
            delay,
        )
        await self._sleep(delay)

    def _accepted(self, event: NotifyEvent, key: str, message: Message) -> Outcome:
        correlation = Correlation(
            event_id=event.event_id, idempotency_key=key, metadata=event.metadata
        )
        result = accepted_record(message, correlation)
        records = [
            OutgoingRecord(self._topics.results, result.key, result.to_bytes()),
            OutgoingRecord(self._topics.correlations, result.key, correlation.to_bytes()),
        ]
        return Outcome(records, message_id=message.id, correlation=correlation)

    def _dead_letter(
        self,
        source: SourceRecord,
        stage: str,
        error: BaseException,
        event_id: str | None = None,
        key: str | None = None,
    ) -> Outcome:
        logger.warning(
            "dead-lettering %s at stage %s: %s: %s",
            _where(source),
            stage,
            type(error).__name__,
            error,
        )
        record = dead_letter(
            source,
            self._topics.dead_letters,
            stage=stage,
            error=error,
            event_id=event_id,
            idempotency_key=key,
        )
        return Outcome([record], dead_letter_stage=stage)

    def _publish(
        self,
        consumed: Consumed,
        outcome: Outcome,
        loop: asyncio.AbstractEventLoop,
        attempt: int,
    ) -> None:
        tracker, offset = consumed.tracker, consumed.record.offset

        def done(error: BaseException | None) -> None:  # on the producer's IO thread
            if error is None:
                self._acknowledged(outcome)
                tracker.finish(offset)
                return
            if tracker.closed:
                return
            again = outcome
            if too_large(error):  # it never will be produced as it is: cut it down
                again = replace(outcome, records=[fit_record(r) for r in outcome.records])
            delay = REPUBLISH_BACKOFF[min(attempt, len(REPUBLISH_BACKOFF) - 1)]
            logger.warning(
                "Kafka did not acknowledge the outcome of %s (%s); producing again in %.1fs",
                _where(consumed.record),
                error,
                delay,
            )
            loop.call_soon_threadsafe(
                loop.call_later, delay, self._publish, consumed, again, loop, attempt + 1
            )

        self._publisher.send(outcome.records, done, wanted=lambda: not tracker.closed)

    def _acknowledged(self, outcome: Outcome) -> None:
        if outcome.dead_letter_stage is not None:
            self._metrics.events_dead_lettered.labels(outcome.dead_letter_stage).inc()
            return
        self._metrics.events_sent.inc()
        if self._on_correlation is not None and outcome.message_id is not None:
            self._on_correlation(outcome.message_id, outcome.correlation)


def _where(source: SourceRecord) -> str:
    return f"{source.topic}[{source.partition}]@{source.offset}"
