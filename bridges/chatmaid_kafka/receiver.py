"""The webhook receiver: an ASGI app that turns Chatmaid webhooks into result records.

Routes: ``POST <webhook path>`` (verify, filter by type, de-duplicate, publish, then
answer), ``GET /healthz`` and ``GET /metrics`` (Prometheus). Every verified event is
published, whatever its type (unless ``events`` leaves it out), with its ``data`` as
received. A webhook is answered 2xx only after Kafka acknowledged its result record
(acks=all); if Kafka does not acknowledge in time the answer is 503, and Chatmaid
retries later. The records of the webhooks read in one loop pass go to Kafka as one
batch (``coalesce``). Bad requests get 400/401/413 with a JSON ``reason``.

The webhook route is plain ASGI, in front of the Starlette app that serves the rest:
Starlette's routing, middleware, request and response objects were about a sixth of
the receiver's work per webhook.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
_UNAVAILABLE = b'{"error":"unavailable","reason":"Kafka did not acknowledge; retry later"}'
_JSON = (b"content-type", b"application/json")
_RETRY_LATER = (b"retry-after", b"30")

#: The request headers the receiver reads, as ASGI names them.
_WANTED_HEADERS = frozenset(
    name.lower().encode("latin-1")
    for name in (SIGNATURE_HEADER, EVENT_HEADER, DELIVERY_HEADER, "content-length")
)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


class _ClientGone(Exception):
    """The caller hung up before its body arrived: nobody to answer."""


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: one ``POST`` to the webhook path (``create_app`` routes it here)."""
        started = time.perf_counter()
        try:
            answer = await self._receive(_headers(scope), receive)
        except _ClientGone:
            return
        finally:
            self._metrics.webhook_seconds.observe(time.perf_counter() - started)
        length = (b"content-length", str(len(answer.body)).encode())
        await send(
            {"type": "http.response.start", "status": answer.status,
             "headers": [_JSON, length, *answer.headers]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": answer.body})

    async def _receive(self, headers: dict[str, str], receive: Receive) -> _Answer:
        body = await _read_capped(headers, receive, self._config.max_body_bytes)
        if body is None:
            limit = self._config.max_body_bytes
            return self._reject(413, "too_large", f"the body is larger than {limit} bytes")
        try:
            event = verify(
                body,
                headers.get(SIGNATURE_HEADER.lower()),
                self._config.secrets,
                tolerance=self._config.tolerance,
            )
        except InvalidWebhookPayloadError as exc:
            return self._reject(400, "invalid_payload", str(exc))
        except WebhookVerificationError as exc:
            return self._reject(401, _REASONS.get(type(exc), "unverified"), str(exc))
        named = headers.get(EVENT_HEADER.lower())
        if named is not None and named != event.event:
            reason = f"{EVENT_HEADER} says {named!r} but the body is {event.event!r}"
            return self._reject(400, "event_mismatch", reason)
        self._metrics.webhooks_verified.inc()
        if not self._wanted(event.event):
            self._metrics.webhooks_filtered.labels(event.event).inc()
            return _Answer(200, _FILTERED)
        keys = delivery_keys(headers.get(DELIVERY_HEADER.lower()), event)
        entry, duplicate = self._ledger.claim(keys, lambda: self._publish(event))
        if duplicate:
            self._metrics.webhooks_duplicate.inc()
        if not isinstance(entry, str):  # a publish still running (else: PUBLISHED)
            try:
                await self._acks.wait(entry)
            except (asyncio.TimeoutError, PublishError):
                self._metrics.webhooks_unavailable.inc()
                return _Answer(503, _UNAVAILABLE, (_RETRY_LATER,))
        return _Answer(200, _DUPLICATE if duplicate else _PUBLISHED)

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

    def _reject(self, status: int, reason: str, detail: str) -> _Answer:
        self._metrics.webhooks_rejected.labels(reason).inc()
        return _Answer(status, json.dumps({"error": reason, "reason": detail}).encode())


def create_app(
    metrics: BridgeMetrics,
    health: Callable[[], dict[str, Any]],
    receiver: WebhookReceiver | None = None,
    webhook_path: str = "/webhooks/chatmaid",
) -> ASGIApp:
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
    if receiver is None:
        return Starlette(routes=routes)
    routes.append(Route(webhook_path, receiver, methods=["POST"]))  # 405 for other methods
    app = Starlette(routes=routes)

    async def webhooks_first(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == webhook_path:
            await receiver(scope, receive, send)
        else:
            await app(scope, receive, send)

    return webhooks_first


def _type_filter(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A test of event types against names and ``prefix.*`` patterns; none: every type."""
    if not patterns:
        return lambda _event: True
    names = frozenset(p for p in patterns if not p.endswith("*"))
    prefixes = tuple(p.removesuffix("*") for p in patterns if p.endswith("*"))
    return lambda event: event in names or event.startswith(prefixes)


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers the receiver reads (names in lower case)."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _WANTED_HEADERS
    }


async def _read_capped(headers: dict[str, str], receive: Receive, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
