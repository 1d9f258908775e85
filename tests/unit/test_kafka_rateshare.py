"""The group's rate share: each process's part of one key's limit, weighed by work."""

from __future__ import annotations

import logging
import random
import time
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaConnectionError

from chatmaid import TokenBucket
from chatmaid_kafka.demand import GroupDemand
from chatmaid_kafka.metrics import BridgeMetrics
from chatmaid_kafka.rateshare import IDLE_WEIGHT, RateShare, share_of
from chatmaid_kafka.settings import BridgeSettings


def test_without_a_view_of_the_group_the_share_follows_the_partitions() -> None:
    assert share_of({0, 1}, 6, None) == pytest.approx(2 / 6)
    assert share_of(set(), 6, None) == pytest.approx(1 / 6)  # a floor: the bucket stays valid


def test_with_every_partition_busy_the_share_follows_the_partitions() -> None:
    assert share_of({0, 1}, 6, set(range(6))) == pytest.approx(2 / 6)


def test_a_process_whose_partitions_ran_dry_lends_its_share() -> None:
    idle, busy = {0, 1}, {2, 3, 4, 5}
    assert share_of(idle, 6, busy) == pytest.approx(2 * IDLE_WEIGHT / (4 + 2 * IDLE_WEIGHT))
    assert share_of({2, 3}, 6, busy) == pytest.approx(2 / (4 + 2 * IDLE_WEIGHT))
    assert share_of({2, 3}, 6, busy) > 0.45  # nearly half each, not a third


def test_the_shares_of_any_assignment_add_up_to_the_whole_limit() -> None:
    rng = random.Random(7)
    for _ in range(500):
        total = rng.randint(1, 24)
        processes = rng.randint(1, total)
        owners = [rng.randrange(processes) for _ in range(total)]
        busy = {p for p in range(total) if rng.random() < 0.5}
        owned = [{p for p in range(total) if owners[p] == i} for i in range(processes)]
        shares = [share_of(mine, total, busy) for mine in owned if mine]
        assert sum(shares) == pytest.approx(1.0)


def bridge_metrics_rate(metrics: BridgeMetrics) -> float:
    value = metrics.registry.get_sample_value("chatmaid_bridge_rate_limit_per_minute")
    assert value is not None
    return value


def test_the_bucket_and_the_metric_follow_the_group_and_the_local_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket, metrics = TokenBucket(600, burst=5), BridgeMetrics()
    seen: dict[str, Any] = {"busy": None}
    share = RateShare(bucket, 600, metrics, group_busy=lambda: seen["busy"])
    with caplog.at_level(logging.INFO, logger="chatmaid_kafka.rateshare"):
        share.update(owned=[0, 1], working=[], total=6)  # no view yet: by partitions
        assert bucket.per_minute == pytest.approx(200)
        seen["busy"] = frozenset({2, 3, 4, 5})  # the others have a backlog, ours is dry
        share.update(owned=[0, 1], working=[], total=6)
        assert bucket.per_minute == pytest.approx(600 * 0.1 / 4.1)
        share.update(
            owned=[0, 1], working=[0], total=6
        )  # new events here, before the group sees them
        assert bucket.per_minute == pytest.approx(600 * 1.05 / 5.05)
        assert bridge_metrics_rate(metrics) == pytest.approx(bucket.per_minute)
    # Logged when the assignment changes, not on every reading.
    assert [r.getMessage() for r in caplog.records] == [
        "rate share: 200 of the key's 600 requests a minute (2 of 6 partitions, unknown with work)"
    ]


class FakeAdmin:
    """The three admin calls ``GroupDemand.read`` makes, answered from fixed offsets."""

    def __init__(self, ends: list[int], committed: dict[int, int], earliest: int = 0) -> None:
        self.ends, self.committed, self.earliest = ends, committed, earliest
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "name": topics[0],
                "partitions": [{"partition_index": p} for p in range(len(self.ends))],
            }
        ]

    def list_partition_offsets(self, specs: dict[TopicPartition, OffsetSpec]) -> dict[Any, Any]:
        return {
            tp: SimpleNamespace(
                offset=self.ends[tp.partition] if spec is OffsetSpec.LATEST else self.earliest
            )
            for tp, spec in specs.items()
        }

    def list_group_offsets(self, specs: dict[str, list[TopicPartition]]) -> dict[str, Any]:
        ((group, partitions),) = specs.items()
        return {
            group: {
                tp: SimpleNamespace(offset=self.committed[tp.partition])
                for tp in partitions
                if tp.partition in self.committed
            }
        }


def settings() -> BridgeSettings:
    return BridgeSettings(notify_topic="notify", group_id="group", bootstrap_servers="k:9092")


def test_the_group_demand_is_the_partitions_committed_below_their_end() -> None:
    admin = FakeAdmin(ends=[10, 10, 7, 0], committed={0: 10, 1: 4, 3: 0})
    assert GroupDemand(settings()).read(admin) == {1, 2}  # 2: never committed, from 0
    emptied = FakeAdmin(ends=[10, 10, 7, 0], committed={0: 10, 1: 10}, earliest=7)
    assert GroupDemand(settings()).read(emptied) == set()  # 2's records are gone: nothing to do


def test_the_group_demand_is_unknown_until_read_and_while_the_broker_is_away() -> None:
    class Away(FakeAdmin):
        def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
            raise KafkaConnectionError("broker away")

    class Flaky(FakeAdmin):
        """Answers once, then the broker is away."""

        calls = 0

        def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
            self.calls += 1
            if self.calls > 1:
                raise KafkaConnectionError("broker away")
            return super().describe_topics(topics)

    admins: list[FakeAdmin] = [Flaky(ends=[5, 0], committed={})]

    def connect() -> Any:  # the first admin, then (the broker away) admins that fail
        return admins.pop() if admins else Away(ends=[], committed={})

    demand = GroupDemand(settings(), interval=0.05, admin_factory=connect)
    assert demand.busy() is None
    demand.start()
    try:
        assert demand.busy() in (None, {0})
        time.sleep(0.3)  # the second reading fails: no stale view is kept
        assert demand.busy() is None
    finally:
        demand.stop()


def test_a_new_assignment_starts_without_burst_credit() -> None:
    now = [100.0]
    bucket = TokenBucket(600, burst=5, clock=lambda: now[0])
    share = RateShare(bucket, 600, BridgeMetrics())
    now[0] += 60  # idle long enough to save a full burst
    share.update(owned=[0, 1], working=[], total=2)
    waits = [bucket.reserve() for _ in range(3)]
    assert waits == pytest.approx([0.0, 0.1, 0.2])  # the rate, not a burst of 5
    now[0] += 60
    share.update(owned=[0, 1], working=[], total=2)  # the same assignment: credit kept
    assert [bucket.reserve() for _ in range(5)] == [0.0] * 5
