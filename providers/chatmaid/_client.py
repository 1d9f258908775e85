"""``ChatmaidClient``: the blocking client. Policy lives in ``_operations``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TypeVar

import httpx
from typing_extensions import Unpack

from ._base_client import BaseClient
from ._config import ClientOptions
from ._flow import Flow, run_sync
from ._models import Account, Message, Page, PhoneNumber, PhoneStatus, Usage
from ._operations import MessageFilters, SendFields, WaitOptions

T = TypeVar("T")


class ChatmaidClient(BaseClient):
    """A blocking client for every Chatmaid endpoint.

    Example::

        client = ChatmaidClient("sk_test_...", base_url=sandbox_url)
        sender = client.resolve_sender()
        client.send_message(from_phone_id=sender.id, to="+15557654321", content="Hi")

    The key falls back to ``CHATMAID_API_KEY``; ``options`` are ``ClientOptions``. Requests
    are rate limited per key and retried per ``RetryPolicy``; failures raise ``ChatmaidError``
    subclasses. ``transport``, ``sleep`` and the ``clock`` option serve tests.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], object] = time.sleep,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(api_key, options)
        self._http = httpx.Client(timeout=self.config.timeout, transport=transport)
        self._sleep = sleep

    def _run(self, flow: Flow[T]) -> T:
        return run_sync(flow, self._http.send, self._sleep)

    def send_message(self, **fields: Unpack[SendFields]) -> Message:
        """Send a message (``SendFields``); a random idempotency key if none is given."""
        return self._run(self._ops.send_message(**fields))

    def get_message(self, message_id: str) -> Message:
        """One message with its lifecycle timestamps."""
        return self._run(self._ops.get_message(message_id))

    def list_messages(
        self, *, page: int = 1, limit: int = 20, **filters: Unpack[MessageFilters]
    ) -> Page[Message]:
        """One page of messages, newest first."""
        return self._run(self._ops.list_messages(page=page, limit=limit, **filters))

    def iter_messages(
        self, *, limit: int = 100, **filters: Unpack[MessageFilters]
    ) -> Iterator[Message]:
        """Every message matching the filters, page after page (newest first).

        Messages created while iterating shift later pages; de-duplicate by ``id`` if
        that matters to you.
        """
        page = 1
        while True:
            result = self.list_messages(page=page, limit=limit, **filters)
            yield from result.data
            if not result.has_next:
                return
            page += 1

    def list_phone_numbers(self) -> list[PhoneNumber]:
        """The account's phone numbers."""
        return self._run(self._ops.list_phone_numbers())

    def get_phone_number(self, phone: str) -> PhoneNumber:
        """One phone, by ID or E.164 number."""
        return self._run(self._ops.get_phone_number(phone))

    def get_phone_status(self, phone: str) -> PhoneStatus:
        """A phone's live connection state, by ID or E.164 number."""
        return self._run(self._ops.get_phone_status(phone))

    def get_account(self) -> Account:
        """The account that owns the key."""
        return self._run(self._ops.get_account())

    def get_usage(self, period: str = "month") -> Usage:
        """Usage over ``day``, ``week`` or ``month``."""
        return self._run(self._ops.get_usage(period))

    def resolve_sender(self, phone: str | None = None, *, max_age: float = 60.0) -> PhoneNumber:
        """The sender for a phone ID, an E.164 number, or the first connected phone.

        The phone list is reused for ``max_age`` seconds (0: always fetched).
        """
        return self._run(self._ops.resolve_sender(phone, max_age=max_age))

    def wait_for_terminal(self, message_id: str, **options: Unpack[WaitOptions]) -> Message:
        """Poll until the message is ``sent``, ``failed`` or another terminal status."""
        return self._run(self._ops.wait_for_terminal(message_id, **options))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ChatmaidClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
