"""``AsyncChatmaidClient``: the asyncio client. Policy lives in ``_operations``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TypeVar

import httpx
from typing_extensions import Unpack

from ._base_client import BaseClient
from ._config import ClientOptions
from ._flow import Flow, run_async
from ._models import Account, Message, Page, PhoneNumber, PhoneStatus, Usage
from ._operations import MessageFilters, SendFields, WaitOptions

T = TypeVar("T")


class AsyncChatmaidClient(BaseClient):
    """An asyncio client for every Chatmaid endpoint (same behaviour as ``ChatmaidClient``).

    Example::

        client = AsyncChatmaidClient("sk_test_...", base_url=sandbox_url)
        sender = await client.resolve_sender()
        await client.send_message(from_phone_id=sender.id, to="+15557654321", content="Hi")

    The key falls back to ``CHATMAID_API_KEY``; ``options`` are ``ClientOptions``. Requests
    are rate limited per key and retried per ``RetryPolicy``; failures raise ``ChatmaidError``
    subclasses. ``transport``, ``sleep`` and the ``clock`` option serve tests.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(api_key, options)
        self._http = httpx.AsyncClient(timeout=self.config.timeout, transport=transport)
        self._sleep = sleep

    async def _run(self, flow: Flow[T]) -> T:
        return await run_async(flow, self._http.send, self._sleep)

    async def send_message(self, **fields: Unpack[SendFields]) -> Message:
        """Send a message (``SendFields``); a random idempotency key if none is given."""
        return await self._run(self._ops.send_message(**fields))

    async def get_message(self, message_id: str) -> Message:
        """One message with its lifecycle timestamps."""
        return await self._run(self._ops.get_message(message_id))

    async def list_messages(
        self, *, page: int = 1, limit: int = 20, **filters: Unpack[MessageFilters]
    ) -> Page[Message]:
        """One page of messages, newest first."""
        return await self._run(self._ops.list_messages(page=page, limit=limit, **filters))

    async def iter_messages(
        self, *, limit: int = 100, **filters: Unpack[MessageFilters]
    ) -> AsyncIterator[Message]:
        """Every message matching the filters, page after page (newest first).

        Messages created while iterating shift later pages; de-duplicate by ``id`` if
        that matters to you.
        """
        page = 1
        while True:
            result = await self.list_messages(page=page, limit=limit, **filters)
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

    async def wait_for_terminal(self, message_id: str, **options: Unpack[WaitOptions]) -> Message:
        """Poll until the message is ``sent``, ``failed`` or another terminal status."""
        return await self._run(self._ops.wait_for_terminal(message_id, **options))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChatmaidClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
