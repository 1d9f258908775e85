"""The notify consumer: a poll loop in one thread, sends on an asyncio loop in another.

Poll thread (owns the ``KafkaConsumer``): reads records, registers their offsets with
the partition's tracker, hands them to the dispatcher, pauses a partition while too
many of its events are unfinished (or while the API holds us off with a 429) and
resumes it once they drain, and commits each partition's finished watermark. It never
waits on a send, so it polls well within ``max.poll.interval.ms`` whatever the API does.

Commits carry, in their metadata, the finished offsets above the committed one
(``offsets.encode_finished``); when a partition is assigned, the first batch read from
it skips them. So a restart or a new owner sends again only what was in flight.

Rebalances: kafka-python 3.x runs listeners on its IO thread, where blocking would
stall heartbeats. Ours is an ``AsyncConsumerRebalanceListener``: on revocation it stops
the revoked partitions' sends, commits what finished (one awaited broker round trip)
and lets go at once. Events still in flight are read again by the next owner and
re-sent with the same idempotency key, so the API answers with the original message:
no second WhatsApp message. kafka-python keeps the fetch position of a partition that
stays ours across a rebalance, so for those we seek back to the commit ourselves.

kafka-python 3.0.12 can lose a rebalance that was started by a metadata change (the
leader's view of the topic's partitions) when the join outlives the ``poll()`` that
began it: the group is left joined but the assignment is never applied. The consumer
primes the metadata before its first join (which is what otherwise triggers one at
start) and, should a revocation not be followed by an assignment within
``REJOIN_AFTER`` seconds, leaves and joins the group again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from kafka.consumer import KafkaConsumer
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from .aio import LoopThread
from .brokers import connected
from .commits import Commits, OffsetCommits, TransactionCommits
from .dispatcher import Dispatcher, Job
from .failures import ApiHalt
from .metrics import ApiWatch, BridgeMetrics
from .offsets import OffsetBook, OffsetTracker, PartitionId, decode_finished
from .rateshare import RateShare
from .records import Consumed, SourceRecord
from .settings import BridgeSettings
from .transactions import TransactionalPublisher

logger = logging.getLogger("chatmaid_kafka.consumer")

POLL_TIMEOUT_MS = 100
#: ``--partition-assignment`` -> kafka-python's assignors (eager: its defaults).
ASSIGNORS = {
    "eager": (RangePartitionAssignor, RoundRobinPartitionAssignor),
    "cooperative-sticky": (CooperativeStickyAssignor,),
}
LAG_INTERVAL = 1.0
REJOIN_AFTER = 60.0
#: Every poll takes all fetched records (a poll is bounded by max_partition_fetch_bytes
#: instead). kafka-python 3.0.12 never fetches again a partition paused while part of a
#: fetched batch was still buffered, so nothing may stay buffered when we pause.
DRAIN_ALL = 1_000_000


class NotifyConsumer:
    """Consumes the notify topic with manual commits until ``stop`` is set."""

    def __init__(
        self,
        settings: BridgeSettings,
        kafka_consumer: Any,
        dispatcher: Dispatcher[Consumed],
        sends: LoopThread,
        metrics: BridgeMetrics,
        api: ApiWatch | None = None,
        halt: ApiHalt | None = None,
        share: RateShare | None = None,
        transactions: TransactionalPublisher | None = None,
    ) -> None:
        self._settings = settings
        self._consumer = kafka_consumer
        self._dispatcher = dispatcher
        self._sends = sends
        self._metrics = metrics
        self._api = api
        self._halt = halt
        self._share = share
        self._rewind_needed = False  # an aborted transaction: read again from the commit
        self._book = OffsetBook()
        self._commits: Commits = (
            OffsetCommits(kafka_consumer, self._book)
            if transactions is None
            else TransactionCommits(
                kafka_consumer,
                transactions,
                on_failure=self._rewind_later,
                on_abort=self._close_all,
            )
        )
        self._last_commit = 0.0
        self._last_lag = 0.0
        # Where to read again a revoked partition that comes straight back (IO thread only).
        self._resume_at: dict[PartitionId, int] = {}
        self._revoked_at: float | None = None
        # Assigned partitions whose commit metadata is not read yet (poll thread reads).
        self._fresh: set[PartitionId] = set()
        self._kafka_ready = True

    @staticmethod
    def connect(settings: BridgeSettings) -> Any:
        """A ``KafkaConsumer`` for the notify topic: manual commits, bounded polls."""
        return KafkaConsumer(
            group_id=settings.group_id,
            client_id="chatmaid-bridge",
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            max_poll_records=DRAIN_ALL,
            max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=min(3000, settings.session_timeout_ms // 3),
            group_instance_id=settings.group_instance_id,
            partition_assignment_strategy=ASSIGNORS[settings.partition_assignment],
            metadata_max_age_ms=30_000,  # notice new partitions within half a minute
            **settings.kafka_options(),
        )

    @property
    def pending(self) -> int:
        """Events read and not yet finished, over every assigned partition."""
        return self._book.pending()

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, then drain, commit and leave the group."""
        self._subscribe()
        logger.info(
            "consuming %s as group %s", self._settings.notify_topic, self._settings.group_id
        )
        try:
            while not stop.is_set():
                try:
                    self._poll_once()
                except KafkaError as exc:  # the broker is away: ride it out
                    self._kafka_ready = False
                    logger.warning("Kafka unavailable (%s); polling again in 1s", exc)
                    stop.wait(1.0)
            self._drain()
        finally:
            self._consumer.close(autocommit=False)
            logger.info("consumer closed")

    @property
    def kafka_ready(self) -> bool:
        """False while the consumer has no connection to any broker."""
        return self._kafka_ready

    # -- the poll loop --------------------------------------------------------------

    def _poll_once(self) -> None:
        if self._rewind_needed:
            self._rewind()
        self._rejoin_if_stuck()
        self._apply_backpressure()
        self._commit_finished()
        records = self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=DRAIN_ALL)
        if records:
            self._dispatch(records)
        self._report_lag()

    def _subscribe(self) -> None:
        self._consumer.subscribe([self._settings.notify_topic], listener=_RebalanceListener(self))
        # A metadata update after subscribe() gives the leader its view of the topic;
        # without it the first assignment is computed blind and redone at once.
        self._consumer.topics()

    def _rejoin_if_stuck(self) -> None:
        revoked_at = self._revoked_at
        if revoked_at is None or time.monotonic() - revoked_at < REJOIN_AFTER:
            return
        self._revoked_at = None
        if self._consumer.assignment():
            return  # a cooperative round that added nothing (kafka-python says nothing)
        logger.warning(
            "no assignment %.0fs after a revocation (a join kafka-python lost); joining again",
            REJOIN_AFTER,
        )
        self._let_go(self._book.trackers())  # the next assignment starts from the commits
        self._consumer.unsubscribe()
        self._subscribe()

    def _dispatch(self, records: dict[Any, list[Any]]) -> None:
        jobs: list[Job[Consumed]] = []
        woke = False  # a partition that had no unfinished event gets some
        for topic_partition, batch in records.items():
            partition = PartitionId(*topic_partition)
            tracker = self._book.get(partition)
            if tracker is None:  # revoked between fetch and now
                continue
            woke = woke or not tracker.pending
            if partition in self._fresh:
                self._fresh.discard(partition)
                tracker.skip(self._finished_earlier(topic_partition))
            for record in batch:
                if not tracker.add(record.offset):
                    self._metrics.events_skipped.inc()
                    continue
                source = SourceRecord(
                    record.topic,
                    record.partition,
                    record.offset,
                    record.key,
                    record.value,
                    list(record.headers or []),
                )
                jobs.append(Job(partition, record.key, Consumed(tracker, source)))
        self._metrics.events_consumed.inc(len(jobs))
        if woke:  # take the partition's share before its events are sent, or they
            self._share_rate()  # would book the idle rate's slots
        self._sends.call_soon(self._dispatcher.submit, jobs)

    def _share_rate(self) -> None:
        """Take this process's share of the key's limit (see ``rateshare``)."""
        if self._share is None:
            return
        total = self._consumer.partitions_for_topic(self._settings.notify_topic)
        if total:
            trackers = self._book.trackers()
            self._share.update(
                owned=[t.partition.partition for t in trackers],
                working=[t.partition.partition for t in trackers if t.pending],
                total=len(total),
            )

    def _finished_earlier(self, topic_partition: TopicPartition) -> set[int]:
        """Offsets above the partition's commit that an earlier owner finished."""
        try:
            committed = self._consumer.committed(topic_partition, metadata=True, timeout_ms=5000)
        except KafkaError as exc:
            logger.warning("no commit metadata for %s (finished events may be sent again "
                           "with their keys): %s", topic_partition, exc)  # fmt: skip
            return set()
        if committed is None:
            return set()
        return decode_finished(committed.offset, committed.metadata)

    def _apply_backpressure(self, drain: bool = False) -> None:
        """Pause a partition while too many of its events are unfinished or one waits to
        be sent again; pause all while a 429 holds the key or the API halts the account."""
        limit = self._settings.max_pending_per_partition
        held = self._api is not None and self._api.held()
        halted = self._halt is not None and self._halt.reason is not None
        everything = drain or held or halted
        paused = set(self._consumer.paused())
        pause, resume = [], []
        blocked = 0
        for tracker in self._book.trackers():
            topic_partition = TopicPartition(*tracker.partition)
            pending = tracker.pending
            waiting = tracker.blockage() is not None
            blocked += waiting
            if topic_partition in paused:
                if not everything and not waiting and pending <= limit // 2:
                    resume.append(topic_partition)
            elif everything or waiting or pending >= limit:
                pause.append(topic_partition)
        if pause:
            self._consumer.pause(*pause)
        if resume:
            self._consumer.resume(*resume)
        if pause or resume:
            logger.debug("paused %s, resumed %s (429 hold: %s, halted: %s)", pause, resume,
                         held, halted)  # fmt: skip
        self._metrics.partitions_paused.set(len(self._consumer.paused()))
        self._metrics.partitions_blocked.set(blocked)
        self._metrics.events_pending.set(self._book.pending())

    def blocked(self) -> dict[str, dict[str, object]]:
        """Partitions whose events wait to be sent again: for how long, and why."""
        now = time.monotonic()
        found: dict[str, dict[str, object]] = {}
        for tracker in self._book.trackers():
            blockage = tracker.blockage()
            if blockage is not None:
                name = f"{tracker.partition.topic}[{tracker.partition.partition}]"
                found[name] = {"seconds": round(now - blockage[0], 1), "reason": blockage[1]}
        return found

    def _commit_finished(self) -> None:
        """Commit each watermark that moved (at most every interval)."""
        now = time.monotonic()
        if now - self._last_commit < self._settings.commit_interval:
            return
        self._last_commit = now
        self._commits.moved(self._book.trackers())

    def _rewind_later(self) -> None:
        """A transaction failed: read again from the last commit (at the next poll)."""
        self._rewind_needed = True

    def _close_all(self) -> None:
        """No outcome of the current progress may be produced any more (it is rewound)."""
        for tracker in self._book.trackers():
            tracker.close()
        self._rewind_needed = True

    def _rewind(self) -> None:
        """After an aborted transaction: forget every partition's progress and read each
        again from its committed offset (its records of that transaction are gone)."""
        self._rewind_needed = False
        trackers = self._book.trackers()
        partitions = [tracker.partition for tracker in trackers]
        self._let_go(trackers)
        self._book.assign(partitions)
        self._fresh.update(partitions)
        for partition in partitions:
            topic_partition = TopicPartition(*partition)
            committed = self._consumer.committed(topic_partition, timeout_ms=10_000)
            if committed is None:
                self._consumer.seek_to_beginning(topic_partition)
            else:
                self._consumer.seek(topic_partition, committed)

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag < LAG_INTERVAL:
            return
        self._last_lag = now
        self._kafka_ready = connected(self._consumer)
        self._share_rate()
        for tracker in self._book.trackers():
            topic_partition = TopicPartition(*tracker.partition)
            labels = self._metrics.partition_blocked_seconds.labels(*map(str, tracker.partition))
            blockage = tracker.blockage()
            labels.set(0.0 if blockage is None else now - blockage[0])
            end = self._consumer.highwater(topic_partition)
            point = tracker.committable()
            if end is not None and point is not None:
                self._metrics.consumer_lag.labels(*map(str, tracker.partition)).set(end - point)

    def _drain(self) -> None:
        """Start nothing new, let in-flight events finish (bounded), commit, let go."""
        trackers = self._book.trackers()
        for tracker in trackers:
            tracker.stop()
        deadline = time.monotonic() + self._settings.shutdown_timeout
        logger.info("draining %d in-flight events", self._book.running())
        while self._book.running() and time.monotonic() < deadline:
            self._apply_backpressure(drain=True)
            self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=DRAIN_ALL)
            self._commit_finished()
        trackers = self._book.trackers()  # a rebalance meanwhile may have taken some
        self._commits.final(trackers)
        self._let_go(trackers)

    # -- rebalances (called on kafka-python's IO thread) ----------------------------

    def assigned(self, partitions: Iterable[Any]) -> None:
        """Assigned partitions: fresh trackers, reading from the first unfinished event."""
        owned = [PartitionId(*p) for p in partitions]
        self._revoked_at = None
        fresh = [p for p in owned if self._book.get(p) is None]
        self._book.assign(owned)
        self._fresh.update(fresh)
        for partition in owned:
            point = self._resume_at.pop(partition, None)
            if point is not None:
                self._consumer.seek(TopicPartition(*partition), point)
        self._resume_at.clear()  # the rest went elsewhere: their owner reads from the commit
        logger.info("assigned %s", _names(owned))

    async def revoked(self, partitions: Iterable[Any]) -> None:
        """Revoked partitions: no new sends, commit what finished, let go."""
        self._revoked_at = time.monotonic()
        trackers = self._book.trackers(PartitionId(*p) for p in partitions)
        for tracker in trackers:
            tracker.stop()
        await self._commits.revoked(trackers, self._book.trackers())
        for tracker in trackers:
            point = tracker.committable()
            if tracker.pending and point is not None:
                self._resume_at[tracker.partition] = point
        self._let_go(trackers)

    def lost(self, partitions: Iterable[Any]) -> None:
        """Partitions lost without a chance to commit: abandon their events (and, with
        transactions, the open one, which may hold their records)."""
        self._let_go(self._book.trackers(PartitionId(*p) for p in partitions))
        self._commits.lost()

    def _let_go(self, trackers: list[OffsetTracker]) -> None:
        """Forget partitions; their unfinished events are read again by the next owner
        and re-sent with the same idempotency keys (the API returns the originals)."""
        if not trackers:
            return
        partitions = [tracker.partition for tracker in trackers]
        abandoned = sum(tracker.running for tracker in trackers)
        self._book.release(partitions)
        self._sends.call_soon(self._dispatcher.cancel, partitions)
        logger.info("released %s (%d in-flight events abandoned)", _names(partitions), abandoned)


class _RebalanceListener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards kafka-python's rebalance callbacks; awaited on its IO loop, never blocking."""

    def __init__(self, owner: NotifyConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._owner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._owner.assigned(assigned)

    async def on_partitions_lost(self, lost: Any) -> None:
        self._owner.lost(lost)


def _names(partitions: Iterable[PartitionId]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in sorted(partitions)) or "nothing"
