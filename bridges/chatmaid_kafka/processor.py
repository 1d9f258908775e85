"""One consumed record to its outcome: sent (accepted + correlation records) or dead-lettered.

The offset is finished only once Kafka acknowledged the outcome's records; if it does
not, they are produced again (with backoff) until it does or the partition is revoked.
Retries of the API call itself are the core's (``RetryPolicy``); when the core gives
up, or the API refuses the event (400, 403, 404), the event is dead-lettered. A 401
means the bridge's own key is wrong: that stops the bridge instead of dead-lettering
every event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from chatmaid import AsyncChatmaidClient, AuthenticationError, ChatmaidError

from .events import InvalidEventError, idempotency_key, parse_notify_event
from .metrics import BridgeMetrics
from .offsets import OffsetTracker
from .producer import Publisher
from .records import (
    Correlation,
    OutgoingRecord,
    SourceRecord,
    accepted_record,
    dead_letter,
)
from .senders import SenderResolver

logger = logging.getLogger("chatmaid_kafka.processor")

#: Seconds before producing an outcome again, by attempt (the last one repeats).
REPUBLISH_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class Consumed:
    """A record read from the notify topic, with the tracker of its partition."""

    tracker: OffsetTracker
    record: SourceRecord


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


class EventProcessor:
    """Sends one notify event through the core client, or dead-letters it."""

    def __init__(
        self,
        *,
        client: AsyncChatmaidClient,
        senders: SenderResolver,
        publisher: Publisher,
        topics: OutputTopics,
        metrics: BridgeMetrics,
        on_fatal: Callable[[BaseException], None],
        on_correlation: Callable[[str, Correlation], None] | None = None,
    ) -> None:
        self._client = client
        self._senders = senders
        self._publisher = publisher
        self._topics = topics
        self._metrics = metrics
        self._on_fatal = on_fatal
        self._on_correlation = on_correlation

    async def handle(self, consumed: Consumed) -> None:
        """Process ``consumed`` and publish its outcome (the dispatcher calls this)."""
        if not consumed.tracker.begin():
            return  # the partition is being revoked or the bridge stops: not started
        source = consumed.record
        try:
            outcome = await self.outcome(source)
        except AuthenticationError as exc:
            consumed.tracker.give_up()
            self._on_fatal(exc)
            return
        except asyncio.CancelledError:
            consumed.tracker.give_up()
            raise
        except Exception as exc:
            logger.exception("unexpected failure on %s", _where(source))
            outcome = self._dead_letter(source, "internal", exc)
        self._publish(consumed, outcome, asyncio.get_running_loop(), attempt=0)

    async def outcome(self, source: SourceRecord) -> Outcome:
        """Send the event in ``source`` (or find it invalid); raises only on a 401."""
        try:
            event = parse_notify_event(source.value)
        except InvalidEventError as exc:
            return self._dead_letter(source, exc.stage, exc)
        key = idempotency_key(event, source.topic, source.partition, source.offset)
        stage = "resolve"
        try:
            phone_id = await self._senders.phone_id(event)
            stage = "send"
            message = await self._client.send_message(
                from_phone=phone_id,
                to=event.to,
                content=event.content,
                media_urls=event.media_urls,
                idempotency_key=key,
            )
        except AuthenticationError:
            raise
        except ChatmaidError as exc:
            return self._dead_letter(source, stage, exc, event_id=event.event_id)
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
    ) -> Outcome:
        logger.warning(
            "dead-lettering %s at stage %s: %s: %s",
            _where(source),
            stage,
            type(error).__name__,
            error,
        )
        record = dead_letter(
            source, self._topics.dead_letters, stage=stage, error=error, event_id=event_id
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
            delay = REPUBLISH_BACKOFF[min(attempt, len(REPUBLISH_BACKOFF) - 1)]
            logger.warning(
                "Kafka did not acknowledge the outcome of %s (%s); producing again in %.1fs",
                _where(consumed.record),
                error,
                delay,
            )
            loop.call_soon_threadsafe(
                loop.call_later, delay, self._publish, consumed, outcome, loop, attempt + 1
            )

        self._publisher.send(outcome.records, done)

    def _acknowledged(self, outcome: Outcome) -> None:
        if outcome.dead_letter_stage is not None:
            self._metrics.events_dead_lettered.labels(outcome.dead_letter_stage).inc()
            return
        self._metrics.events_sent.inc()
        if self._on_correlation is not None and outcome.message_id is not None:
            self._on_correlation(outcome.message_id, outcome.correlation)


def _where(source: SourceRecord) -> str:
    return f"{source.topic}[{source.partition}]@{source.offset}"
