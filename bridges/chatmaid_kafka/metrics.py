"""Prometheus metrics of the bridge, and the core client observer that feeds them.

Each ``BridgeMetrics`` has its own registry, so several bridges (or tests) in one
process never collide. ``ApiWatch`` observes the core client (its ``observers``): it
counts every attempt, retry and 429 (the core retries internally), and remembers how
long a 429 asked to back off, so the poll loop can pause partitions meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from chatmaid import AttemptFinished, ClientEvent, RateLimitWait, RetryScheduled

#: Prometheus exposition content type.
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class BridgeMetrics:
    """Every metric the bridge exports (names prefixed ``chatmaid_bridge_``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "chatmaid_bridge_events_consumed", "Notify events read from Kafka", registry=r
        )
        self.events_skipped = Counter(
            "chatmaid_bridge_events_skipped",
            "Notify events read again that an earlier owner had finished (commit metadata)",
            registry=r,
        )
        self.events_sent = Counter(
            "chatmaid_bridge_events_sent", "Notify events accepted by the API", registry=r
        )
        self.events_dead_lettered = Counter(
            "chatmaid_bridge_events_dead_lettered",
            "Notify events written to the dead-letter topic",
            ["stage"],
            registry=r,
        )
        self.events_pending = Gauge(
            "chatmaid_bridge_events_pending", "Events read and not yet finished", registry=r
        )
        self.partitions_paused = Gauge(
            "chatmaid_bridge_partitions_paused", "Partitions paused for backpressure", registry=r
        )
        self.consumer_lag = Gauge(
            "chatmaid_bridge_consumer_lag",
            "Records between the committable offset and the partition end",
            ["topic", "partition"],
            registry=r,
        )
        self.partitions_blocked = Gauge(
            "chatmaid_bridge_partitions_blocked",
            "Partitions paused because an event waits to be sent again",
            registry=r,
        )
        self.partition_blocked_seconds = Gauge(
            "chatmaid_bridge_partition_blocked_seconds",
            "How long the partition's longest waiting event has waited to be sent again",
            ["topic", "partition"],
            registry=r,
        )
        self.send_rounds_failed = Counter(
            "chatmaid_bridge_send_rounds_failed",
            "Rounds of attempts that ended without an answer for the event (it is sent again)",
            ["action"],
            registry=r,
        )
        self.api_halted = Gauge(
            "chatmaid_bridge_api_halted",
            "1 while the API refuses the account's sends (403, no connected sender)",
            registry=r,
        )
        self.rate_limit = Gauge(
            "chatmaid_bridge_rate_limit_per_minute",
            "This process's client-side rate limit (its share of the key's, by partitions)",
            registry=r,
        )
        self.api_requests = Counter(
            "chatmaid_bridge_api_requests",
            "API request attempts by HTTP status (or 'error' without an answer)",
            ["status"],
            registry=r,
        )
        self.api_retries = Counter(
            "chatmaid_bridge_api_retries", "API request attempts that were retries", registry=r
        )
        self.api_rate_limited = Counter(
            "chatmaid_bridge_api_rate_limited", "API answers 429 Too Many Requests", registry=r
        )
        self.webhooks_verified = Counter(
            "chatmaid_bridge_webhooks_verified", "Webhooks with a valid signature", registry=r
        )
        self.webhooks_rejected = Counter(
            "chatmaid_bridge_webhooks_rejected",
            "Webhooks refused, by reason",
            ["reason"],
            registry=r,
        )
        self.webhooks_duplicate = Counter(
            "chatmaid_bridge_webhooks_duplicate", "Webhook deliveries seen before", registry=r
        )
        self.webhooks_unavailable = Counter(
            "chatmaid_bridge_webhooks_unavailable",
            "Webhooks answered 503 because Kafka did not acknowledge in time",
            registry=r,
        )
        self.webhooks_filtered = Counter(
            "chatmaid_bridge_webhooks_filtered",
            "Verified webhooks not published: their type is not in --webhook-events",
            ["event"],
            registry=r,
        )
        self.webhooks_uncorrelated = Counter(
            "chatmaid_bridge_webhooks_uncorrelated",
            "Message webhooks published with correlationMissing (no eventId within the wait)",
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "chatmaid_bridge_webhook_seconds",
            "Time to answer a webhook",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)


class ApiWatch:
    """A core client observer: counts attempts, retries and 429s, and holds after a 429.

    ``held()`` is true while a 429 asks the key to wait (the wait the core honours: the
    body's ``retryAfter``), so the poll loop pauses every partition meanwhile.
    """

    def __init__(self, metrics: BridgeMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._held_until = 0.0

    def held(self) -> bool:
        """True while the API's last 429 asked us to wait."""
        return self._clock() < self._held_until

    def __call__(self, event: ClientEvent) -> None:
        """Observe one event of the core client."""
        if isinstance(event, AttemptFinished):
            status = "error" if event.status_code is None else str(event.status_code)
            self._metrics.api_requests.labels(status).inc()
            if event.status_code == 429:
                self._metrics.api_rate_limited.inc()
        elif isinstance(event, RetryScheduled):
            self._metrics.api_retries.inc()
        elif isinstance(event, RateLimitWait):
            self._held_until = max(self._held_until, self._clock() + event.seconds)
