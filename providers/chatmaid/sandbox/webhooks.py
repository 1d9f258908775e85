"""Webhook delivery: a queue of signed POSTs, retried on the documented schedule.

An event is queued for every endpoint subscribed to it and posted by a few worker
tasks, so an API answer never waits for a receiver. A non-2xx answer, a timeout or a
connection error is retried 1, 5 and 15 minutes after the first attempt (times
``Settings.time_scale``); each attempt is signed afresh (or, with
``keep_signature_on_retry``, with the first attempt's signature) and recorded, with
the receiver's answer, in a ``DeliveryRecord`` per delivery.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from .deliveries import RESPONSE_BODY_LIMIT, DeliveryAttempt, DeliveryRecord, subject_of
from .state import SandboxState, WebhookEndpoint, new_id, utcnow
from .wire import EVENT_HEADER, SIGNATURE_HEADER, sign

DELIVERY_HEADER = "X-Chatmaid-Delivery"
#: Seconds after the first attempt at which a failed delivery is retried (Webhooks page).
RETRY_OFFSETS = (60.0, 300.0, 900.0)
WORKERS = 4


@dataclass(slots=True)
class _Delivery:
    record: DeliveryRecord
    endpoint: WebhookEndpoint
    body: bytes
    generation: int
    first_attempt: float = 0.0  # monotonic time of attempt 1
    first_attempted_at: datetime | None = None
    first_signature: str | None = None


_Job = tuple[_Delivery, int]


class WebhookDispatcher:
    """Queues, signs, posts, retries and records webhook deliveries."""

    def __init__(self, state: SandboxState, clock: Callable[[], float] = time.monotonic) -> None:
        self._state = state
        self._clock = clock
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._retries: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._generation = 0
        self._http: httpx.AsyncClient | None = None

    def emit(self, event: str, build: Callable[[], dict[str, Any]]) -> None:
        """Queue an ``event`` for every endpoint subscribed to it; ``build`` makes it.

        The payload is built only when some endpoint wants it, so a sandbox without
        webhooks spends nothing on events.
        """
        endpoints = [e for e in self._state.webhooks.values() if event in e.events]
        if not endpoints:
            return
        payload = build()
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        subject = subject_of(payload)
        for endpoint in endpoints:
            self._queue_new(endpoint, event, subject, body)

    def redeliver(self, original: DeliveryRecord) -> DeliveryRecord | None:
        """Deliver ``original``'s body again, as a new delivery; None if its endpoint is gone."""
        endpoint = self._state.webhooks.get(original.endpoint_id)
        if endpoint is None:
            return None
        body = original.body.encode()
        return self._queue_new(endpoint, original.event, original.subject, body, original.id)

    def _queue_new(
        self,
        endpoint: WebhookEndpoint,
        event: str,
        subject: str | None,
        body: bytes,
        redelivery_of: str | None = None,
    ) -> DeliveryRecord:
        record = DeliveryRecord(new_id("dlv_"), endpoint.id, endpoint.url, event, subject,
                                body.decode(), utcnow(), redelivery_of)  # fmt: skip
        self._state.add_delivery(record)
        self._queue.put_nowait((_Delivery(record, endpoint, body, self._generation), 1))
        return record

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the workers (and their HTTP client) for the lifetime of the server."""
        # trust_env=False: receivers are named directly, never through an HTTP(S)_PROXY.
        async with httpx.AsyncClient(trust_env=False) as http:
            self._http = http
            workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]
            try:
                yield
            finally:
                self.reset()
                for worker in workers:
                    worker.cancel()
                for worker in workers:
                    with suppress(asyncio.CancelledError):
                        await worker
                self._http = None

    def reset(self) -> None:
        """Drop queued and scheduled deliveries; attempts in flight are not recorded."""
        self._generation += 1
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        while not self._queue.empty():
            self._queue.get_nowait()

    async def _work(self) -> None:
        while True:
            delivery, attempt = await self._queue.get()
            if self._current(delivery):
                await self._attempt(delivery, attempt)

    def _current(self, delivery: _Delivery) -> bool:
        return (
            delivery.generation == self._generation and delivery.endpoint.id in self._state.webhooks
        )

    async def _attempt(self, delivery: _Delivery, attempt: int) -> None:
        assert self._http is not None
        started, attempted_at = self._clock(), utcnow()
        if attempt == 1:
            delivery.first_attempt, delivery.first_attempted_at = started, attempted_at
        settings = self._state.settings
        signature = delivery.first_signature if settings.keep_signature_on_retry else None
        if signature is None:
            signature = sign(delivery.body, delivery.endpoint.secret)
        if attempt == 1:
            delivery.first_signature = signature
        record = delivery.record
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: record.event,
            SIGNATURE_HEADER: signature,
        }
        if settings.delivery_id_header:
            headers[DELIVERY_HEADER] = record.id
        status_code: int | None = None
        error: str | None = None
        answer: str | None = None
        try:
            response = await self._http.post(
                delivery.endpoint.url,
                content=delivery.body,
                headers=headers,
                timeout=self._state.settings.webhook_timeout,
            )
            status_code = response.status_code
            answer = response.text[:RESPONSE_BODY_LIMIT]
            if not response.is_success:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if not self._current(delivery):
            return
        retry = error is not None and attempt <= len(RETRY_OFFSETS)
        self._state.add_attempt(
            record,
            DeliveryAttempt(
                delivery_id=record.id,
                endpoint_id=delivery.endpoint.id,
                url=delivery.endpoint.url,
                event=record.event,
                attempt=attempt,
                scheduled_at=self._scheduled_at(delivery, attempt),
                attempted_at=attempted_at,
                offset_seconds=started - delivery.first_attempt,
                signature=signature,
                duration_ms=(self._clock() - started) * 1000,
                status_code=status_code,
                error=error,
                response_body=answer,
            ),
            self._scheduled_at(delivery, attempt + 1) if retry else None,
        )
        if retry:
            self._schedule_retry(delivery, attempt + 1)

    def _scheduled_at(self, delivery: _Delivery, attempt: int) -> datetime:
        if attempt == 1 or delivery.first_attempted_at is None:
            return delivery.record.queued_at
        offset = RETRY_OFFSETS[attempt - 2] * self._state.settings.time_scale
        return delivery.first_attempted_at + timedelta(seconds=offset)

    def _schedule_retry(self, delivery: _Delivery, attempt: int) -> None:
        due = delivery.first_attempt + RETRY_OFFSETS[attempt - 2] * self._state.settings.time_scale
        job = (delivery.record.id, attempt)
        loop = asyncio.get_running_loop()
        self._retries[job] = loop.call_later(
            max(0.0, due - self._clock()), self._enqueue_retry, delivery, attempt
        )

    def _enqueue_retry(self, delivery: _Delivery, attempt: int) -> None:
        self._retries.pop((delivery.record.id, attempt), None)
        self._queue.put_nowait((delivery, attempt))
