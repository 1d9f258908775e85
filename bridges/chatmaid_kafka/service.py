"""A bridge process: builds the consumer and/or the receiver from settings, runs, stops.

Threads: the consumer's poll loop; an asyncio loop for sends; kafka-python's IO
threads (consumer, producer, correlation tail); uvicorn for HTTP (webhooks when
receiving, ``/healthz`` and ``/metrics`` always). ``stop()`` drains in order: the
consumer first (in-flight sends finish and are committed), then HTTP, then Kafka.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from chatmaid import (
    AsyncChatmaidClient,
    AuthenticationError,
    ChatmaidError,
    ClientOptions,
    TokenBucket,
)

from .aio import LoopThread
from .consumer import NotifyConsumer
from .correlation import CorrelationIndex, CorrelationTail
from .dedupe import DeliveryLedger
from .demand import GroupDemand
from .dispatcher import Dispatcher
from .failures import ApiHalt
from .metrics import ApiWatch, BridgeMetrics
from .processor import EventProcessor, OutputTopics
from .producer import Publisher, default_linger_ms
from .rateshare import RateShare
from .receiver import ReceiverConfig, WebhookReceiver, create_app
from .records import Consumed
from .server import HttpServer
from .settings import BridgeSettings
from .topics import ensure_topics
from .transactions import TransactionalPublisher

logger = logging.getLogger("chatmaid_kafka.service")


class StartupError(RuntimeError):
    """The bridge cannot start with this configuration or environment."""


@dataclass
class _Sends:
    """The consumer's half: its thread, the send loop and the API client."""

    consumer: NotifyConsumer
    loop: LoopThread
    client: AsyncChatmaidClient
    halt: ApiHalt
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class Bridge:
    """The components of one bridge process. ``start()``, then ``stop()``."""

    def __init__(self, settings: BridgeSettings, *, consume: bool, receive: bool) -> None:
        if not consume and not receive:
            raise ValueError("a bridge consumes, receives, or both")
        self.settings = settings
        self.metrics = BridgeMetrics()
        self._consume = consume
        self._receive = receive
        self._publisher: Publisher | None = None
        self._transactions: TransactionalPublisher | None = None
        self._index: CorrelationIndex | None = None
        self._tail: CorrelationTail | None = None
        self._demand: GroupDemand | None = None
        self._sends: _Sends | None = None
        self._http: HttpServer | None = None
        self.fatal: BaseException | None = None
        self.failed = threading.Event()

    @property
    def url(self) -> str:
        """Where the HTTP server listens."""
        assert self._http is not None, "not started"
        return self._http.url

    def start(self) -> Bridge:
        """Connect to Kafka (creating topics if told), start every component."""
        s = self.settings
        outputs = [s.results_topic, s.correlation_topic]
        if self._consume:
            outputs.append(s.dlq_topic)
        if s.create_topics:
            ensure_topics(s, [s.notify_topic, *outputs] if self._consume else outputs)
        linger = s.producer_linger_ms
        if linger is None:
            linger = default_linger_ms(consume=self._consume, receive=self._receive)
        self._publisher = Publisher.connect(s.kafka_options(), linger_ms=linger)
        self._publisher.warm_up(outputs)
        receiver = None
        if self._receive:
            self._index = CorrelationIndex(s.correlation_capacity)
            self._tail = CorrelationTail(s.kafka_options(), s.correlation_topic, self._index)
            self._tail.start()
            receiver = WebhookReceiver(
                ReceiverConfig(
                    secrets=s.webhook_secrets(),
                    results_topic=s.results_topic,
                    tolerance=s.webhook_tolerance,
                    max_body_bytes=s.max_body_bytes,
                    publish_timeout=s.publish_timeout,
                    correlation_wait=s.correlation_wait,
                    events=s.webhook_event_patterns(),
                ),
                self._publisher,
                self._index,
                DeliveryLedger(s.dedupe_capacity),
                self.metrics,
            )
        if self._consume:
            outcomes = self._publisher
            if s.exactly_once:
                self._transactions = TransactionalPublisher.connect_transactional(
                    s.kafka_options(), s.transactional_id_or_default(), linger_ms=linger
                )
                outcomes = self._transactions
            self._sends = self._start_consumer(outcomes)
        app = create_app(self.metrics, self.health, receiver, s.webhook_path)
        self._http = HttpServer(app, s.host, s.port).start()
        logger.info(
            "bridge started (consume=%s, receive=%s, producer linger %d ms) on %s",
            self._consume,
            self._receive,
            linger,
            self._http.url,
        )
        return self

    def alive(self) -> dict[str, bool]:
        """Whether each component runs (a dead one ends the process)."""
        components = {"http": self._http is not None and self._http.alive}
        sends = self._sends
        if sends is not None:
            thread = sends.thread
            components["consumer"] = thread is not None and thread.is_alive() and not self.fatal
        if self._tail is not None:
            components["correlation"] = self._tail.alive
        return components

    def health(self) -> dict[str, Any]:
        """``/healthz``'s body: ``status`` (``ok``, ``degraded`` or ``failing``), each
        component's state, and why sends wait, if they do. A broker outage and a halt
        are ``failing`` (not ready) but ridden out, not ended."""
        components = self.alive()
        report: dict[str, Any] = {"components": components}
        degraded = False
        sends = self._sends
        if sends is not None:
            if sends.halt.reason is not None:
                components["api"] = False
                report["halted"] = {"reason": sends.halt.reason}
            blocked = sends.consumer.blocked()
            if blocked:
                report["blocked"] = blocked
                degraded = True
        components["kafka"] = all(
            part.kafka_ready for part in (sends and sends.consumer, self._tail) if part
        )
        healthy = all(components.values())
        report["status"] = "failing" if not healthy else "degraded" if degraded else "ok"
        return report

    def stop(self) -> None:
        """Drain the consumer (commit what finished), then stop HTTP and Kafka clients."""
        sends = self._sends
        if sends is not None and sends.thread is not None:
            sends.stop.set()
            sends.thread.join(self.settings.shutdown_timeout + 30)
        if self._http is not None:
            self._http.stop()
        if self._tail is not None:
            self._tail.stop()
        if self._demand is not None:
            self._demand.stop()
        for publisher in (self._publisher, self._transactions):
            if publisher is not None:
                publisher.close()
        if sends is not None:
            sends.loop.run(sends.client.aclose(), timeout=10)
            sends.loop.stop()
        logger.info("bridge stopped")

    def _start_consumer(self, publisher: Publisher) -> _Sends:
        s = self.settings
        assert s.api_key is not None
        loop = LoopThread().start()
        watch = ApiWatch(self.metrics)
        bucket = _bucket(s)
        client = AsyncChatmaidClient(
            s.api_key.get_secret_value(), **_client_options(s, watch, bucket)
        )
        try:
            self._check_sender(loop, client)
        except StartupError:
            loop.run(client.aclose(), timeout=10)
            loop.stop()
            raise
        halt = ApiHalt(s.probe_interval)
        self.metrics.api_halted.set_function(lambda: float(halt.reason is not None))
        processor = EventProcessor(
            client=client,
            publisher=publisher,
            topics=OutputTopics(s.results_topic, s.dlq_topic, s.correlation_topic),
            metrics=self.metrics,
            halt=halt,
            on_fatal=self._on_fatal,
            on_correlation=self._index.put if self._index is not None else None,
            default_from=s.default_from,
        )
        dispatcher: Dispatcher[Consumed] = Dispatcher(processor.handle, s.concurrency)
        share = None
        if bucket is not None and s.rate_limit_scope == "group":
            self._demand = GroupDemand(s)
            self._demand.start()
            share = RateShare(bucket, bucket.per_minute, self.metrics, group_busy=self._demand.busy)
        consumer = NotifyConsumer(
            s,
            NotifyConsumer.connect(s),
            dispatcher,
            loop,
            self.metrics,
            watch,
            halt,
            share,
            self._transactions,
        )
        sends = _Sends(consumer, loop, client, halt)
        sends.thread = threading.Thread(
            target=self._run_consumer, args=(sends,), name="chatmaid-bridge-poll", daemon=True
        )
        sends.thread.start()
        return sends

    def _check_sender(self, loop: LoopThread, client: AsyncChatmaidClient) -> None:
        """Resolve the default sender now, so that a wrong key or sender shows at start."""
        try:
            phone = loop.run(
                client.resolve_sender(self.settings.default_from),
                timeout=self.settings.send_deadline,
            )
        except AuthenticationError as exc:
            raise StartupError(f"the API refused the key: {exc}") from None
        except ChatmaidError as exc:
            logger.warning("default sender not resolvable at start (events must name one): %s", exc)
        else:
            logger.info("default sender: %s (%s)", phone.id, phone.phone_number)

    def _run_consumer(self, sends: _Sends) -> None:
        try:
            sends.consumer.run(sends.stop)
        except Exception as exc:
            logger.exception("the consumer failed")
            self._on_fatal(exc)

    def _on_fatal(self, error: BaseException) -> None:
        if self.fatal is None:
            self.fatal = error
            logger.error("stopping the consumer: %s", error)
        if self._sends is not None:
            self._sends.stop.set()
        self.failed.set()


def _bucket(settings: BridgeSettings) -> TokenBucket | None:
    """The process's bucket (``None``: no client-side limit)."""
    rate = settings.requests_per_minute or None
    if rate is None:
        return None
    return TokenBucket(rate, burst=settings.rate_limit_burst)


def _client_options(
    settings: BridgeSettings, watch: ApiWatch, bucket: TokenBucket | None
) -> ClientOptions:
    options: ClientOptions = {
        "rate_limiter": bucket,
        "max_connections": settings.concurrency,
        "observers": [watch],
        "timeout": settings.request_timeout,
        "max_retries": settings.max_retries,
        "deadline": settings.send_deadline,
        "idempotency_namespace": settings.idempotency_namespace,
        "requests_per_minute": None,
    }
    if settings.base_url is not None:
        options["base_url"] = settings.base_url
    return options
