"""``AsyncChatmaidClient``: the asyncio client. Policy lives in ``_operations``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TypeVar

import httpx

from ._base_client import BaseClient
from ._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_TIMEOUT,
    build_config,
)
from ._flow import Flow, run_async
from ._models import Account, Message, Page, PhoneNumber, PhoneStatus, Usage
from ._observers import Observer
from ._pool import Shards
from ._ratelimit import Clock, TokenBucket
from ._retry import RetryPolicy

T = TypeVar("T")


class AsyncChatmaidClient(BaseClient):
    """An asyncio client for every Chatmaid endpoint (same behaviour as ``ChatmaidClient``).

    Example::

        client = AsyncChatmaidClient("sk_test_...", base_url=sandbox_url)
        sender = await client.resolve_sender()
        await client.send_message(from_phone=sender.id, to="+15557654321", content="Hi")

    ``api_key`` falls back to ``CHATMAID_API_KEY`` and ``base_url`` to ``CHATMAID_BASE_URL``
    (else the public host). ``timeout`` bounds each attempt (s); ``max_retries`` (default
    4) bounds retries of 5xx and transport errors, 429 waits aside; ``deadline`` bounds a
    whole call, waits included (s). ``requests_per_minute`` sets the key's shared bucket
    (``None``: off) unless you pass a ``rate_limiter`` of your own; ``retry`` is a full
    ``RetryPolicy``. ``observers`` receive ``ClientEvent``s; ``idempotency_namespace``
    scopes derived keys to a deployment; ``strict_numbers`` adds the possible-number
    check to E.164 validation. ``max_connections`` (default 100) is split over small
    pools (see ``_pool``). ``transport``, ``sleep`` and ``clock`` serve tests.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        deadline: float | None = None,
        requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
        rate_limiter: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
        observers: Sequence[Observer] = (),
        idempotency_namespace: str | None = None,
        strict_numbers: bool = False,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(
            build_config(
                api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                deadline=deadline,
                requests_per_minute=requests_per_minute,
                rate_limiter=rate_limiter,
                retry=retry,
                observers=observers,
                idempotency_namespace=idempotency_namespace,
                strict_numbers=strict_numbers,
                clock=clock,
            )
        )
        self._pools = Shards.build(
            httpx.AsyncClient,
            timeout=self.config.timeout,
            transport=transport,
            max_connections=max_connections,
        )
        self._sleep = sleep

    async def _run(self, flow: Flow[T]) -> T:
        return await run_async(flow, self._send, self._sleep)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        with self._pools.lease() as pool:
            return await pool.send(request)

    async def send_message(
        self,
        *,
        to: str,
        content: str | None = None,
        media_urls: Sequence[str] | None = None,
        from_phone: str | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """Send a message to ``to`` (E.164) with ``content`` and/or ``media_urls``.

        ``from_phone`` is a phone ID, an E.164 number of the account, or ``None`` for the
        first connected phone. Without ``idempotency_key`` one random key is made for
        this call and reused by its retries; a failed call's error carries it
        (``error.idempotency_key``): send again with it to never send twice.
        """
        flow = self._ops.send_message(
            to=to,
            content=content,
            media_urls=media_urls,
            from_phone=from_phone,
            idempotency_key=idempotency_key,
        )
        return await self._run(flow)

    async def get_message(self, message_id: str) -> Message:
        """One message with its lifecycle timestamps."""
        return await self._run(self._ops.get_message(message_id))

    async def list_messages(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        status: str | None = None,
        phone_number_id: str | None = None,
        environment: str | None = None,
    ) -> Page[Message]:
        """One page of messages, newest first, filtered by ``status`` (pending, sent,
        failed), sender ``phone_number_id`` and ``environment`` (default: the key's)."""
        flow = self._ops.list_messages(
            page=page,
            limit=limit,
            status=status,
            phone_number_id=phone_number_id,
            environment=environment,
        )
        return await self._run(flow)

    async def iter_messages(
        self,
        *,
        limit: int = 100,
        status: str | None = None,
        phone_number_id: str | None = None,
        environment: str | None = None,
    ) -> AsyncIterator[Message]:
        """Every message matching the filters, page after page (newest first).

        Messages created while iterating shift later pages; de-duplicate by ``id`` if
        that matters to you.
        """
        page = 1
        while True:
            result = await self.list_messages(
                page=page,
                limit=limit,
                status=status,
                phone_number_id=phone_number_id,
                environment=environment,
            )
            for message in result.data:
                yield message
            if not result.has_next:
                return
            page += 1

    async def list_phone_numbers(self) -> list[PhoneNumber]:
        """The account's phone numbers."""
        return await self._run(self._ops.list_phone_numbers())

    async def get_phone_number(self, phone: str) -> PhoneNumber:
        """One phone, by ID or E.164 number."""
        return await self._run(self._ops.get_phone_number(phone))

    async def get_phone_status(self, phone: str) -> PhoneStatus:
        """A phone's live connection state, by ID or E.164 number."""
        return await self._run(self._ops.get_phone_status(phone))

    async def get_account(self) -> Account:
        """The account that owns the key."""
        return await self._run(self._ops.get_account())

    async def get_usage(self, period: str = "month") -> Usage:
        """Usage over ``day``, ``week`` or ``month``."""
        return await self._run(self._ops.get_usage(period))

    async def resolve_sender(
        self, phone: str | None = None, *, max_age: float = 60.0
    ) -> PhoneNumber:
        """The sender for a phone ID, an E.164 number, or the first connected phone.

        The phone list is reused for ``max_age`` seconds (0: always fetched).
        """
        return await self._run(self._ops.resolve_sender(phone, max_age=max_age))

    async def wait_for_terminal(
        self,
        message_id: str,
        *,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        backoff: float = 1.5,
    ) -> Message:
        """Poll until the message is ``sent``, ``failed`` or another terminal status.

        Polls every ``poll_interval`` s, growing by ``backoff`` up to ``max_poll_interval``;
        ``DeliveryTimeoutError`` (with the last status) after ``timeout`` s.
        """
        flow = self._ops.wait_for_terminal(
            message_id,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            backoff=backoff,
        )
        return await self._run(flow)

    async def aclose(self) -> None:
        """Close the connection pools."""
        for pool in self._pools.pools:
            await pool.aclose()

    @property
    def is_closed(self) -> bool:
        """True once ``aclose()`` was called."""
        return all(pool.is_closed for pool in self._pools.pools)

    async def __aenter__(self) -> AsyncChatmaidClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
