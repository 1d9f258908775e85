"""Prometheus metrics of the bridge, and the HTTP transport that observes the API.

Each ``BridgeMetrics`` has its own registry, so several bridges (or tests) in one
process never collide. ``ObservedTransport`` wraps the core client's transport: it
counts every attempt, retry and 429 (the core retries internally), and remembers how
long a 429 asked to back off, so the poll loop can pause partitions meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: Prometheus exposition content type.
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

_ATTEMPT = "chatmaid_kafka.attempt"


class BridgeMetrics:
    """Every metric the bridge exports (names prefixed ``chatmaid_bridge_``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "chatmaid_bridge_events_consumed", "Notify events read from Kafka", registry=r
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
        self.webhook_seconds = Histogram(
            "chatmaid_bridge_webhook_seconds",
            "Time to answer a webhook",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)


class ObservedTransport(httpx.AsyncBaseTransport):
    """Counts API attempts for ``BridgeMetrics`` and tracks the latest 429 back-off."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        metrics: BridgeMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._clock = clock
        self._held_until = 0.0

    def held(self) -> bool:
        """True while the API's last 429 asked us to wait."""
        return self._clock() < self._held_until

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the wrapped transport, observing the outcome."""
        # The core re-sends the same Request object on a retry, so a mark on it counts.
        if request.extensions.get(_ATTEMPT):
            self._metrics.api_retries.inc()
        request.extensions[_ATTEMPT] = True
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            self._metrics.api_requests.labels("error").inc()
            raise
        self._metrics.api_requests.labels(str(response.status_code)).inc()
        if response.status_code == 429:
            self._metrics.api_rate_limited.inc()
            self._held_until = max(self._held_until, self._clock() + _retry_after(response))
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
