"""The webhook receiver: an ASGI app that turns Chatmaid webhooks into result records.

Routes: ``POST <webhook path>`` (verify, filter by type, de-duplicate, publish, then
answer), ``GET /healthz`` and ``GET /metrics`` (Prometheus). Every verified event is
published, whatever its type (unless ``events`` leaves it out), with its ``data`` as
received. A webhook is answered 2xx only after Kafka acknowledged its result record
(acks=all); if Kafka does not acknowledge in time the answer is 503, and Chatmaid
retries later. The records of the webhooks read in one loop pass go to Kafka as one
batch (``coalesce``). Bad requests get 400/401/413 with a JSON ``reason``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatmaid import (
    InvalidWebhookPayloadError,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    TimestampOutsideToleranceError,
    WebhookEvent,
    WebhookVerificationError,
)
from chatmaid.webhooks import EVENT_HEADER, SIGNATURE_HEADER, verify

from .coalesce import Coalescer, RecordSink
from .correlation import CorrelationIndex
from .dedupe import DeliveryLedger, delivery_keys
from .metrics import METRICS_CONTENT_TYPE, BridgeMetrics
from .producer import PublishError
from .records import Correlation, OutgoingRecord, webhook_message_id, webhook_record
from .waits import BoundedWaits

#: The sandbox (and the API) name each delivery; the same ID on every retry.
DELIVERY_HEADER = "X-Chatmaid-Delivery"

#: The answers of the hot path, rendered once.
_PUBLISHED = b'{"ok":true,"duplicate":false}'
_DUPLICATE = b'{"ok":true,"duplicate":true}'
_FILTERED = b'{"ok":true,"filtered":true}'

_REASONS: dict[type[WebhookVerificationError], str] = {
    MissingSignatureError: "missing_signature",
    MalformedSignatureError: "malformed_signature",
    TimestampOutsideToleranceError: "stale_signature",
    SignatureMismatchError: "bad_signature",
}


@dataclass(frozen=True)
class ReceiverConfig:
    """How webhooks are checked and published. ``secrets``: one, or several while rotating;
    ``events``: the types to publish (``message.read``, or a prefix ``message.*``), empty
    for every type."""

    secrets: list[str] = field(repr=False)
    results_topic: str = "chatmaid.results"
    tolerance: float = 300.0
    max_body_bytes: int = 65_536
    publish_timeout: float = 5.0
    correlation_wait: float = 2.0
    events: tuple[str, ...] = ()


class WebhookReceiver:
    """Verifies, de-duplicates and publishes webhook deliveries."""

    def __init__(
        self,
        config: ReceiverConfig,
        sink: RecordSink,
        index: CorrelationIndex,
        ledger: DeliveryLedger,
        metrics: BridgeMetrics,
    ) -> None:
        self._config = config
        self._batches = Coalescer(sink)
        self._index = index
        self._ledger = ledger
        self._metrics = metrics
        self._wanted = _type_filter(config.events)
        self._acks = BoundedWaits(config.publish_timeout + config.correlation_wait)

    async def endpoint(self, request: Request) -> Response:
        """``POST`` handler."""
        started = time.perf_counter()
        try:
            return await self._receive(request)
        finally:
            self._metrics.webhook_seconds.observe(time.perf_counter() - started)

    async def _receive(self, request: Request) -> Response:
        body = await _read_capped(request, self._config.max_body_bytes)
        if body is None:
            limit = self._config.max_body_bytes
            return self._reject(413, "too_large", f"the body is larger than {limit} bytes")
        try:
            event = verify(
                body,
                request.headers.get(SIGNATURE_HEADER),
                self._config.secrets,
                tolerance=self._config.tolerance,
            )
        except InvalidWebhookPayloadError as exc:
            return self._reject(400, "invalid_payload", str(exc))
        except WebhookVerificationError as exc:
            return self._reject(401, _REASONS.get(type(exc), "unverified"), str(exc))
        named = request.headers.get(EVENT_HEADER)
        if named is not None and named != event.event:
            reason = f"{EVENT_HEADER} says {named!r} but the body is {event.event!r}"
            return self._reject(400, "event_mismatch", reason)
        self._metrics.webhooks_verified.inc()
        if not self._wanted(event.event):
            self._metrics.webhooks_filtered.labels(event.event).inc()
            return _answer(_FILTERED)
        keys = delivery_keys(request.headers.get(DELIVERY_HEADER), event)
        entry, duplicate = self._ledger.claim(keys, lambda: self._publish(event))
        if duplicate:
            self._metrics.webhooks_duplicate.inc()
        if not isinstance(entry, str):  # a publish still running (else: PUBLISHED)
            try:
                await self._acks.wait(entry)
            except (asyncio.TimeoutError, PublishError):
                self._metrics.webhooks_unavailable.inc()
                return JSONResponse(
                    {"error": "unavailable", "reason": "Kafka did not acknowledge; retry later"},
                    status_code=503,
                    headers={"Retry-After": "30"},
                )
        return _answer(_DUPLICATE if duplicate else _PUBLISHED)

    def _publish(self, event: WebhookEvent) -> asyncio.Future[None]:
        """The future of ``event``'s record acknowledged; its correlation is waited for
        (in a task) only when the message is not known yet."""
        message_id = webhook_message_id(event)
        if message_id is None:
            return self._submit(event, None)
        correlation = self._index.get(message_id)
        if correlation is not None or self._config.correlation_wait <= 0:
            return self._submit(event, correlation)
        return asyncio.ensure_future(self._publish_when_correlated(event, message_id))

    async def _publish_when_correlated(self, event: WebhookEvent, message_id: str) -> None:
        correlation = await self._index.wait_for(message_id, self._config.correlation_wait)
        await self._submit(event, correlation)

    def _submit(self, event: WebhookEvent, correlation: Correlation | None) -> asyncio.Future[None]:
        record = webhook_record(event, correlation)
        topic = self._config.results_topic
        acked = self._batches.submit(OutgoingRecord(topic, record.key, record.to_bytes()))
        if record.correlation_missing:
            acked.add_done_callback(self._count_uncorrelated)
        return acked

    def _count_uncorrelated(self, acked: asyncio.Future[None]) -> None:
        if not acked.cancelled() and acked.exception() is None:
            self._metrics.webhooks_uncorrelated.inc()

    def _reject(self, status: int, reason: str, detail: str) -> Response:
        self._metrics.webhooks_rejected.labels(reason).inc()
        return JSONResponse({"error": reason, "reason": detail}, status_code=status)


def create_app(
    metrics: BridgeMetrics,
    health: Callable[[], dict[str, Any]],
    receiver: WebhookReceiver | None = None,
    webhook_path: str = "/webhooks/chatmaid",
) -> Starlette:
    """The bridge's HTTP app: the webhook route (when receiving), health and metrics."""

    async def healthz(request: Request) -> Response:
        report = health()
        return JSONResponse(report, status_code=503 if report["status"] == "failing" else 200)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if receiver is not None:
        routes.append(Route(webhook_path, receiver.endpoint, methods=["POST"]))
    return Starlette(routes=routes)


def _type_filter(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A test of event types against names and ``prefix.*`` patterns; none: every type."""
    if not patterns:
        return lambda _event: True
    names = frozenset(p for p in patterns if not p.endswith("*"))
    prefixes = tuple(p.removesuffix("*") for p in patterns if p.endswith("*"))
    return lambda event: event in names or event.startswith(prefixes)


def _answer(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
