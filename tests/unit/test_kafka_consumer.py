"""The poll loop and rebalance handling, with a fake KafkaConsumer (no broker)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from kafka.errors import KafkaConnectionError
from kafka.structs import OffsetAndMetadata, TopicPartition

from chatmaid_kafka.aio import LoopThread
from chatmaid_kafka.brokers import connected
from chatmaid_kafka.consumer import NotifyConsumer
from chatmaid_kafka.dispatcher import Dispatcher
from chatmaid_kafka.metrics import BridgeMetrics
from chatmaid_kafka.offsets import decode_finished, encode_finished
from chatmaid_kafka.records import Consumed
from chatmaid_kafka.settings import BridgeSettings

TOPIC = "notify"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class Acknowledged:
    """What kafka-python's commit future is to an awaiting listener: here, done at once."""

    def __await__(self) -> Iterator[None]:
        return iter(())


class FakeKafka:
    """Serves queued records per partition, honours pause(), records commits."""

    def __init__(self, records: dict[TopicPartition, int]) -> None:
        self._lock = threading.Lock()
        self.queued = {
            tp: [Record(tp.topic, tp.partition, o, b"k%d" % (o % 3), b"{}", []) for o in range(n)]
            for tp, n in records.items()
        }
        self.assigned = list(records)
        self.paused_set: set[TopicPartition] = set()
        self.async_commits: list[dict[TopicPartition, int]] = []
        self.sync_commits: list[dict[TopicPartition, int]] = []
        self.listener: Any = None
        self.closed = False
        self.ever_paused: set[TopicPartition] = set()
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.subscriptions = self.unsubscriptions = 0
        self.on_rejoin: list[TopicPartition] = []  # what a join assigns when nothing is
        self.stored: dict[TopicPartition, Any] = {}  # the group's commits, with metadata

    def topics(self) -> set[str]:
        return {TOPIC}

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.subscriptions += 1
        self.listener = listener
        self.assigned = self.assigned or self.on_rejoin
        asyncio.run(listener.on_partitions_assigned(set(self.assigned)))

    def unsubscribe(self) -> None:
        self.unsubscriptions += 1

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        time.sleep(0.005)
        with self._lock:
            out = {}
            for tp, queue in self.queued.items():
                if tp in self.paused_set or not queue:
                    continue
                out[tp], self.queued[tp] = queue[:50], queue[50:]
            return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_set)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused_set.update(partitions)
        self.ever_paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused_set.difference_update(partitions)

    def commit_async(self, offsets: dict[Any, Any], callback: Any = None) -> Acknowledged:
        self.async_commits.append({tp: meta.offset for tp, meta in offsets.items()})
        self.stored.update(offsets)
        if callback is not None:
            callback(offsets, None)
        return Acknowledged()

    def commit(self, offsets: dict[Any, Any]) -> None:
        self.sync_commits.append({tp: meta.offset for tp, meta in offsets.items()})
        self.stored.update(offsets)

    def committed(self, tp: TopicPartition, metadata: bool, timeout_ms: int) -> Any:
        return self.stored.get(tp)

    def highwater(self, tp: TopicPartition) -> int:
        return 100

    def metrics(self) -> dict[str, dict[str, float]]:
        return {"consumer-metrics": {"connection-count": 1.0}}

    def close(self, autocommit: bool) -> None:
        self.closed = True

    def last_committed(self) -> dict[TopicPartition, int]:
        merged: dict[TopicPartition, int] = {}
        for commit in [*self.async_commits, *self.sync_commits]:
            merged.update(commit)
        return merged


class Held:
    def __init__(self) -> None:
        self.on = False

    def held(self) -> bool:
        return self.on


class Bench:
    """A NotifyConsumer on a fake Kafka; ``finish`` decides when events complete."""

    def __init__(
        self,
        kafka: FakeKafka,
        finish: Callable[[Consumed], bool] = lambda consumed: True,
        **settings: Any,
    ) -> None:
        self.kafka = kafka
        self.finish = finish
        self.seen: list[tuple[int, int]] = []
        self.parked: list[Consumed] = []
        self.loop = LoopThread().start()
        self.dispatcher: Dispatcher[Consumed] = Dispatcher(self._handle, concurrency=16)
        self.api = Held()
        self.settings = BridgeSettings(notify_topic=TOPIC, commit_interval=0, **settings)
        self.consumer = NotifyConsumer(
            self.settings,
            kafka,
            self.dispatcher,
            self.loop,
            BridgeMetrics(),
            self.api,  # type: ignore[arg-type]
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.consumer.run, args=(self.stop,), daemon=True)

    async def _handle(self, consumed: Consumed) -> None:
        if not consumed.tracker.begin():
            return
        self.seen.append((consumed.record.partition, consumed.record.offset))
        if self.finish(consumed):
            consumed.tracker.finish(consumed.record.offset)
        else:
            self.parked.append(consumed)

    def release_parked(self) -> None:
        for consumed in self.parked:
            consumed.tracker.finish(consumed.record.offset)
        self.parked.clear()

    def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.01)

    def shutdown(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.loop.stop()


@pytest.fixture
def benches() -> Iterator[list[Bench]]:
    made: list[Bench] = []
    yield made
    for bench in made:
        if bench.thread.is_alive():
            bench.shutdown()


def test_every_record_is_dispatched_and_its_watermark_committed(benches: list[Bench]) -> None:
    bench = Bench(FakeKafka({P0: 120, P1: 80}))
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: bench.kafka.last_committed() == {P0: 120, P1: 80})
    bench.shutdown()
    assert sorted(bench.seen) == sorted([(0, o) for o in range(120)] + [(1, o) for o in range(80)])
    assert bench.kafka.closed
    assert bench.kafka.ever_paused == set()


def test_the_commit_waits_for_the_first_unfinished_offset(benches: list[Bench]) -> None:
    bench = Bench(FakeKafka({P0: 20}), finish=lambda c: c.record.offset != 5)
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: len(bench.seen) == 20)
    time.sleep(0.1)
    assert bench.kafka.last_committed() == {P0: 5}
    bench.release_parked()
    bench.until(lambda: bench.kafka.last_committed() == {P0: 20})
    bench.shutdown()


def test_a_partition_with_too_many_unfinished_events_is_paused_then_resumed(
    benches: list[Bench],
) -> None:
    bench = Bench(
        FakeKafka({P0: 300, P1: 10}), finish=lambda c: False, max_pending_per_partition=100
    )
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: P0 in bench.kafka.paused_set)
    assert P1 not in bench.kafka.paused_set
    assert len([s for s in bench.seen if s[0] == 0]) < 300
    bench.finish = lambda c: True
    bench.release_parked()
    bench.until(lambda: bench.kafka.last_committed().get(P0) == 300)
    assert P0 not in bench.kafka.paused_set
    bench.shutdown()


def test_a_429_hold_pauses_every_partition(benches: list[Bench]) -> None:
    bench = Bench(FakeKafka({P0: 0, P1: 0}))
    benches.append(bench)
    bench.api.on = True
    bench.thread.start()
    bench.until(lambda: bench.kafka.paused_set == {P0, P1})
    bench.api.on = False
    bench.until(lambda: bench.kafka.paused_set == set())
    bench.shutdown()


def test_shutdown_drains_in_flight_events_and_commits(benches: list[Bench]) -> None:
    bench = Bench(FakeKafka({P0: 10}), finish=lambda c: False)
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: len(bench.parked) == 10)
    threading.Timer(0.2, bench.release_parked).start()
    bench.shutdown()
    assert bench.kafka.sync_commits[-1] == {P0: 10}
    assert bench.kafka.closed


def test_revocation_commits_what_finished_at_once_and_lets_go(benches: list[Bench]) -> None:
    # Offsets 0-3 and 6-9 finish; 4 and 5 stay in flight.
    bench = Bench(FakeKafka({P0: 10}), finish=lambda c: c.record.offset not in (4, 5))
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: len(bench.seen) == 10)
    parked = list(bench.parked)
    started = time.monotonic()
    asyncio.run(bench.consumer.revoked({P0}))
    assert time.monotonic() - started < 0.5  # no waiting for in-flight sends
    commit = bench.kafka.stored[P0]
    assert commit.offset == 4  # the first unfinished
    assert decode_finished(commit.offset, commit.metadata) == {6, 7, 8, 9}
    assert all(c.tracker.closed for c in parked)  # late completions are ignored
    bench.release_parked()
    bench.shutdown()
    assert bench.kafka.last_committed()[P0] == 4


def test_the_next_owner_sends_only_what_was_in_flight(benches: list[Bench]) -> None:
    kafka = FakeKafka({P0: 10})
    kafka.stored[P0] = OffsetAndMetadata(4, encode_finished(4, {6, 7, 8, 9}), -1)
    kafka.queued[P0] = kafka.queued[P0][4:]  # it reads from the commit
    bench = Bench(kafka)
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: bench.kafka.last_committed().get(P0) == 10)
    assert sorted(offset for _, offset in bench.seen) == [4, 5]
    bench.shutdown()


def test_a_partition_that_comes_back_is_read_again_from_its_first_unfinished_event(
    benches: list[Bench],
) -> None:
    bench = Bench(FakeKafka({P0: 10, P1: 10}), finish=lambda c: c.record.offset < 4)
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: len(bench.seen) == 20)
    asyncio.run(bench.consumer.revoked({P0, P1}))
    bench.consumer.assigned({P0})  # P0 stays ours (eager rebalance), P1 goes elsewhere
    assert bench.kafka.seeks == [(P0, 4)]
    bench.consumer.assigned({P0, P1})  # a later assignment seeks nothing stale
    assert bench.kafka.seeks == [(P0, 4)]
    bench.release_parked()
    bench.shutdown()


def test_a_revocation_never_followed_by_an_assignment_rejoins_the_group(
    benches: list[Bench], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chatmaid_kafka.consumer.REJOIN_AFTER", 0.2)
    bench = Bench(FakeKafka({P0: 5}))
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: bench.kafka.last_committed() == {P0: 5})
    bench.kafka.assigned, bench.kafka.on_rejoin = [], [P0]
    asyncio.run(bench.consumer.revoked({P0}))  # ...and kafka-python loses the join
    bench.until(lambda: bench.kafka.unsubscriptions == 1)
    assert bench.kafka.subscriptions == 2
    time.sleep(0.3)
    assert bench.kafka.unsubscriptions == 1  # the new assignment ended the watch
    bench.shutdown()


def test_a_cooperative_revocation_that_keeps_partitions_is_not_a_lost_join(
    benches: list[Bench], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chatmaid_kafka.consumer.REJOIN_AFTER", 0.2)
    bench = Bench(FakeKafka({P0: 5, P1: 5}))
    benches.append(bench)
    bench.thread.start()
    bench.until(lambda: bench.kafka.last_committed() == {P0: 5, P1: 5})
    bench.kafka.assigned = [P0]
    asyncio.run(bench.consumer.revoked({P1}))  # the round that follows adds nothing
    time.sleep(0.5)
    assert bench.kafka.unsubscriptions == 0
    bench.shutdown()


def test_the_poll_loop_rides_out_kafka_errors_and_reports_not_ready(
    benches: list[Bench], monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = FakeKafka({P0: 5})
    bench = Bench(kafka)
    benches.append(bench)
    real_poll = kafka.poll
    down = threading.Event()
    down.set()

    def poll(timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        if down.is_set():
            raise KafkaConnectionError("111 ECONNREFUSED")
        return real_poll(timeout_ms, max_records)

    monkeypatch.setattr(kafka, "poll", poll)
    bench.thread.start()
    bench.until(lambda: not bench.consumer.kafka_ready)
    assert bench.thread.is_alive()
    down.clear()  # the broker is back
    bench.until(lambda: bench.kafka.last_committed() == {P0: 5})
    bench.until(lambda: bench.consumer.kafka_ready)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"consumer-metrics": {"connection-count": 2.0}}, True),
        ({"consumer-metrics": {"connection-count": 0.0}}, False),
        ({}, True),  # metrics turned off
    ],
)
def test_a_client_without_broker_connections_is_not_connected(
    metrics: dict[str, dict[str, float]], expected: bool
) -> None:
    class Client:
        def metrics(self) -> dict[str, dict[str, float]]:
            return metrics

    assert connected(Client()) is expected
