"""``ChatmaidHook``: an Airflow connection turned into a core Chatmaid client.

The hook reads the connection (API key in the password, base URL in the host, options
in the extras) and hands everything else to the core: validation, retries, 429s, the
rate limit. Triggers borrow an ``AsyncChatmaidClient`` shared by every trigger of the
event loop that uses the same connection settings.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.connection import (
    get_async_connection,
    get_async_extra_dejson,
)
from airflow.sdk import BaseHook, Connection

from chatmaid import (
    AsyncChatmaidClient,
    ChatmaidClient,
    ChatmaidConfigurationError,
    ChatmaidError,
    ClientOptions,
    Message,
    WebhookEvent,
    webhooks,
)


@dataclass(frozen=True)
class ChatmaidConnectionSettings:
    """What a Chatmaid connection configures; secrets stay out of the repr.

    ``requests_per_minute`` of 0 turns the client-side rate limiter off; ``None`` fields
    take the core's defaults.
    """

    api_key: str = field(repr=False)
    base_url: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    requests_per_minute: float | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    default_from_phone: str | None = None
    idempotency_namespace: str | None = None

    @classmethod
    def from_connection(
        cls, conn: Connection, extra: Mapping[str, Any]
    ) -> ChatmaidConnectionSettings:
        """Read a connection and its (already parsed) extras.

        Extras may come as strings (URI form) or under the ``extra__chatmaid__`` prefix
        older connection forms wrote.
        """
        if not conn.password:
            raise ChatmaidConfigurationError(
                f"connection {conn.conn_id!r} has no API key: put sk_test_... or sk_live_... "
                "in its password field"
            )
        options = _Extras(conn.conn_id, extra)
        return cls(
            api_key=conn.password,
            base_url=_base_url(conn.host, conn.port),
            timeout=options.number("timeout"),
            max_retries=options.integer("max_retries"),
            requests_per_minute=options.number("requests_per_minute"),
            webhook_secret=options.text("webhook_secret"),
            default_from_phone=options.text("default_from_phone"),
            idempotency_namespace=options.text("idempotency_namespace"),
        )

    def client_options(self) -> ClientOptions:
        """The core ``ClientOptions`` these settings set (unset ones keep the defaults)."""
        options = ClientOptions()
        if self.base_url is not None:
            options["base_url"] = self.base_url
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.max_retries is not None:
            options["max_retries"] = self.max_retries
        if self.requests_per_minute is not None:
            options["requests_per_minute"] = self.requests_per_minute or None
        if self.idempotency_namespace is not None:
            options["idempotency_namespace"] = self.idempotency_namespace
        return options


class ChatmaidHook(BaseHook):
    """Interact with the Chatmaid WhatsApp API through an Airflow connection.

    The connection (type ``chatmaid``) holds the API key in its password, the base URL
    in its host (empty: the public host) and the extras ``timeout``, ``max_retries``,
    ``requests_per_minute``, ``webhook_secret``, ``default_from_phone`` (the sender when
    a task names none: saves a phone-list call per task) and ``idempotency_namespace``
    (set a different one per deployment when two deployments share one account).

    Example::

        hook = ChatmaidHook()
        message = hook.send_message(to="+15557654321", content="Nightly load done")
        hook.client.get_usage("day")  # every core method, on the blocking client

    :param chatmaid_conn_id: the connection to use.
    """

    conn_name_attr = "chatmaid_conn_id"
    default_conn_name = "chatmaid_default"
    conn_type = "chatmaid"
    hook_name = "Chatmaid"

    def __init__(self, chatmaid_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chatmaid_conn_id = chatmaid_conn_id

    # -- connection -----------------------------------------------------------------

    @cached_property
    def settings(self) -> ChatmaidConnectionSettings:
        """The connection's settings (read once, blocking)."""
        conn = self.get_connection(self.chatmaid_conn_id)
        return ChatmaidConnectionSettings.from_connection(conn, conn.extra_dejson)

    async def aget_settings(self) -> ChatmaidConnectionSettings:
        """The connection's settings, read without blocking the event loop."""
        conn = await get_async_connection(self.chatmaid_conn_id, hook=self)
        extra = await get_async_extra_dejson(conn)
        return ChatmaidConnectionSettings.from_connection(conn, extra)

    # -- blocking client --------------------------------------------------------------

    @cached_property
    def client(self) -> ChatmaidClient:
        """The core's blocking client, built on first use; it has every core method."""
        settings = self.settings
        return ChatmaidClient(settings.api_key, **settings.client_options())

    def get_conn(self) -> ChatmaidClient:
        """The blocking client (Airflow's usual hook entry point)."""
        return self.client

    def send_message(
        self,
        *,
        to: str,
        content: str | None = None,
        media_urls: Sequence[str] | None = None,
        from_phone: str | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """Send one message from ``from_phone`` (a phone id, a sender's E.164 number, or
        ``None``: the connection's ``default_from_phone``, else the account's first
        connected phone, which the core resolves)."""
        return self.client.send_message(
            from_phone=from_phone or self.settings.default_from_phone,
            to=to,
            content=content,
            media_urls=media_urls,
            idempotency_key=idempotency_key,
        )

    def get_message(self, message_id: str) -> Message:
        """One message, with its current status."""
        return self.client.get_message(message_id)

    def wait_for_terminal(
        self,
        message_id: str,
        *,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
    ) -> Message:
        """Poll until the message is terminal (the core's ``wait_for_terminal``)."""
        return self.client.wait_for_terminal(
            message_id,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        )

    def verify_webhook(self, raw_body: bytes | str, signature: str | None) -> WebhookEvent:
        """Verify a webhook delivery with the connection's ``webhook_secret`` and parse it."""
        secret = self.settings.webhook_secret
        if not secret:
            raise ChatmaidConfigurationError(
                f"connection {self.chatmaid_conn_id!r} has no webhook_secret extra"
            )
        return webhooks.verify(raw_body, signature, secret=secret)

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with one cheap authenticated call (``GET /v1/account``)."""
        try:
            account = self.client.get_account()
        except ChatmaidError as exc:
            return False, str(exc)
        environment = self.client.config.environment
        return True, f"Connected to Chatmaid account {account.name!r} with a {environment} key"

    # -- asyncio --------------------------------------------------------------------

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[AsyncChatmaidClient]:
        """Borrow the event loop's shared ``AsyncChatmaidClient`` for this connection.

        The connection is read the async-safe way; every borrower with the same
        settings on the same loop shares one client (one connection pool), closed
        when the last one returns it.
        """
        settings = await self.aget_settings()
        async with _POOL.borrow(settings) as client:
            yield client

    async def asend_message(
        self,
        client: AsyncChatmaidClient,
        *,
        to: str,
        content: str | None = None,
        media_urls: Sequence[str] | None = None,
        from_phone: str | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """``send_message`` on a borrowed async client."""
        settings = await self.aget_settings()
        return await client.send_message(
            from_phone=from_phone or settings.default_from_phone,
            to=to,
            content=content,
            media_urls=media_urls,
            idempotency_key=idempotency_key,
        )


def _base_url(host: str | None, port: int | None) -> str | None:
    """``https://host[:port]`` for a bare host; a host with a scheme is kept as given."""
    if not host:
        return None
    url = host if "://" in host else f"https://{host}"
    if port and urlsplit(url).port is None:
        url = f"{url.rstrip('/')}:{port}"
    return url.rstrip("/")


class _Extras:
    """Typed access to a connection's extras, naming the connection in every error."""

    def __init__(self, conn_id: str, extra: Mapping[str, Any]) -> None:
        self._conn_id = conn_id
        self._extra = extra

    def _raw(self, name: str) -> Any:
        value = self._extra.get(name)
        if value is None:
            value = self._extra.get(f"extra__chatmaid__{name}")
        return None if value == "" else value

    def _invalid(self, name: str, value: Any, expected: str) -> ChatmaidConfigurationError:
        return ChatmaidConfigurationError(
            f"connection {self._conn_id!r}: extra {name!r} must be {expected} (got {value!r})"
        )

    def text(self, name: str) -> str | None:
        value = self._raw(name)
        return None if value is None else str(value)

    def number(self, name: str) -> float | None:
        value = self._raw(name)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self._invalid(name, value, "a number >= 0") from None
        if number < 0:
            raise self._invalid(name, value, "a number >= 0")
        return number

    def integer(self, name: str) -> int | None:
        number = self.number(name)
        if number is None:
            return None
        if not number.is_integer():
            raise self._invalid(name, self._raw(name), "a whole number >= 0")
        return int(number)


@dataclass
class _Lease:
    client: AsyncChatmaidClient
    borrowers: int = 0


class _AsyncClientPool:
    """One ``AsyncChatmaidClient`` per (event loop, connection settings), reference-counted."""

    def __init__(self) -> None:
        self._leases: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[ChatmaidConnectionSettings, _Lease]
        ] = weakref.WeakKeyDictionary()

    @asynccontextmanager
    async def borrow(
        self, settings: ChatmaidConnectionSettings
    ) -> AsyncIterator[AsyncChatmaidClient]:
        leases = self._leases.setdefault(asyncio.get_running_loop(), {})
        lease = leases.get(settings)
        if lease is None:
            # No await between the lookup and the insert: one client per settings.
            client = AsyncChatmaidClient(settings.api_key, **settings.client_options())
            lease = leases[settings] = _Lease(client)
        lease.borrowers += 1
        try:
            yield lease.client
        finally:
            lease.borrowers -= 1
            if lease.borrowers == 0:
                del leases[settings]
                await lease.client.aclose()


_POOL = _AsyncClientPool()
