"""``ChatmaidHook``: an Airflow connection turned into a core Chatmaid client.

The hook reads the connection (API key in the password, base URL in the host, options
in the extras) and hands everything else to the core: validation, retries, 429s, the
rate limit. Triggers borrow an ``AsyncChatmaidClient`` shared by every trigger of the
event loop that uses the same connection settings.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.connection import (
    get_async_connection,
    get_async_extra_dejson,
)
from airflow.providers.common.compat.sdk import AirflowNotFoundException
from airflow.sdk import BaseHook, Connection

from chatmaid import (
    DEFAULT_BASE_URL,
    AsyncChatmaidClient,
    ChatmaidClient,
    ChatmaidConfigurationError,
    ChatmaidError,
    ClientOptions,
    Message,
    WebhookEvent,
    environment_of,
    mask_key,
    webhooks,
)
from chatmaid_airflow.exceptions import ChatmaidFatalError, task_error


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
    message_url: str | None = None

    @classmethod
    def from_connection(
        cls, conn: Connection, extra: Mapping[str, Any]
    ) -> ChatmaidConnectionSettings:
        """Read a connection and its (already parsed) extras.

        Extras may come as strings (URI form) or under the ``extra__chatmaid__`` prefix
        older connection forms wrote. Errors name the field; the hook adds the connection.
        """
        api_key = (conn.password or "").strip()
        if not api_key:
            raise ChatmaidConfigurationError(
                "no API key: put sk_test_... or sk_live_... in the connection's password "
                "field (API key)"
            )
        try:
            environment_of(api_key)
        except ChatmaidConfigurationError:
            raise ChatmaidConfigurationError(
                f"the API key ({mask_key(api_key)}) is not a Chatmaid key: it must start with "
                "sk_test_ or sk_live_; paste the key from the dashboard's API Keys page into "
                "the connection's password field"
            ) from None
        options = _Extras(extra)
        return cls(
            api_key=api_key,
            base_url=_base_url(conn.host, conn.port),
            timeout=options.number("timeout", positive=True),
            max_retries=options.integer("max_retries"),
            requests_per_minute=options.number("requests_per_minute"),
            webhook_secret=options.text("webhook_secret"),
            default_from_phone=options.text("default_from_phone"),
            idempotency_namespace=options.text("idempotency_namespace"),
            message_url=options.url_template("message_url", "{message_id}"),
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
    (set a different one per deployment when two deployments share one account) and
    ``message_url`` (where the tasks' *Chatmaid message* link points, ``{message_id}``
    replaced: your dashboard's message page).

    Its methods raise ``ChatmaidFatalError`` (no retry) or ``ChatmaidRetryableError``,
    naming the connection and host (see ``task_errors``); ``client`` is the core's own.

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
        self._host: str | None = None  # the base URL's host, once the connection was read

    # -- connection -----------------------------------------------------------------

    @cached_property
    def settings(self) -> ChatmaidConnectionSettings:
        """The connection's settings (read once, blocking; the core's errors as they are)."""
        conn = self.get_connection(self.chatmaid_conn_id)
        return self._settings_of(conn, conn.extra_dejson)

    async def aget_settings(self) -> ChatmaidConnectionSettings:
        """The connection's settings, read without blocking the event loop."""
        conn = await get_async_connection(self.chatmaid_conn_id, hook=self)
        return self._settings_of(conn, await get_async_extra_dejson(conn))

    def _settings_of(
        self, conn: Connection, extra: Mapping[str, Any]
    ) -> ChatmaidConnectionSettings:
        self._host = _host_shown(conn.host, conn.port)
        return ChatmaidConnectionSettings.from_connection(conn, extra)

    @contextmanager
    def task_errors(self, *, name_connection: bool = True) -> Iterator[None]:
        """Raise the core's errors as task errors that name the connection and host.

        ``ChatmaidFatalError`` (no retry) where a retry cannot help: 400, 401, 403, 404,
        bad input, a missing or misconfigured connection, an idempotency conflict;
        ``ChatmaidRetryableError`` otherwise. Every hook method that calls the API
        raises through it. ``name_connection=False`` leaves the id out (the UI's *Test*
        runs on a temporary connection with a random id).
        """
        try:
            yield
        except AirflowNotFoundException as exc:
            raise ChatmaidFatalError(
                f"Chatmaid connection {self.chatmaid_conn_id!r} is not defined: add it under "
                "Admin > Connections (type Chatmaid), or set "
                f"AIRFLOW_CONN_{self.chatmaid_conn_id.upper()}"
            ) from exc
        except ChatmaidError as exc:
            host = f"host {self._host}" if self._host else "host not read"
            where = f"connection {self.chatmaid_conn_id!r}, " if name_connection else ""
            raise task_error(exc, where=f"Chatmaid ({where}{host})") from exc

    # -- blocking client --------------------------------------------------------------

    @cached_property
    def client(self) -> ChatmaidClient:
        """The core's blocking client, built on first use; it has every core method (and
        raises the core's errors as they are)."""
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
        with self.task_errors():
            return self.client.send_message(
                from_phone=from_phone or self.settings.default_from_phone,
                to=to,
                content=content,
                media_urls=media_urls,
                idempotency_key=idempotency_key,
            )

    def get_message(self, message_id: str) -> Message:
        """One message, with its current status."""
        with self.task_errors():
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
        with self.task_errors():
            return self.client.wait_for_terminal(
                message_id,
                timeout=timeout,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
            )

    def message_url(self, message_id: str) -> str | None:
        """The connection's ``message_url`` for this message, or ``None`` when unset."""
        with self.task_errors():
            template = self.settings.message_url
        return template.replace("{message_id}", message_id) if template else None

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
            with self.task_errors(name_connection=False):
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
        with self.task_errors():
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
        with self.task_errors():
            settings = await self.aget_settings()
            return await client.send_message(
                from_phone=from_phone or settings.default_from_phone,
                to=to,
                content=content,
                media_urls=media_urls,
                idempotency_key=idempotency_key,
            )


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _base_url(host: str | None, port: int | None) -> str | None:
    """The Base URL with the Port field's port in it; ``None`` for the core's default.

    The port may be in either field (the form shows both), not two different ones.
    """
    if not host and not port:
        return None
    url = (host or DEFAULT_BASE_URL).rstrip("/")
    if "://" not in url:
        shown = f"{url}:{port}" if port else url
        raise ChatmaidConfigurationError(
            f"the Base URL (host) {shown!r} has no scheme: write https://{shown}, or "
            f"http://{shown} for a local sandbox (in a connection URI: "
            f"chatmaid://https://:<key>@{shown})"
        )
    parts = urlsplit(url)
    try:
        in_url = parts.port
    except ValueError:
        raise ChatmaidConfigurationError(f"the Base URL {url!r} has an invalid port") from None
    if port and in_url and port != in_url:
        raise ChatmaidConfigurationError(
            f"the Base URL {url!r} says port {in_url} and the Port field {port}: keep one of them"
        )
    port = port or in_url
    netloc = parts.netloc.rsplit(":", 1)[0] if in_url else parts.netloc
    if port and port != _DEFAULT_PORTS.get(parts.scheme):
        netloc = f"{netloc}:{port}"
    return parts._replace(netloc=netloc).geturl()


def _host_shown(host: str | None, port: int | None) -> str:
    """The base URL's host (and port), as errors show it: never any credentials."""
    url = (host or DEFAULT_BASE_URL).rpartition("@")[2]
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
        shown, url_port = parts.hostname or url, parts.port
    except ValueError:  # an unreadable port: show the host as written
        return url
    port = url_port or port
    return f"{shown}:{port}" if port else shown


class _Extras:
    """Typed access to a connection's extras, naming the field in every error."""

    def __init__(self, extra: Mapping[str, Any]) -> None:
        self._extra = extra

    def _raw(self, name: str) -> Any:
        value = self._extra.get(name)
        if value is None:
            value = self._extra.get(f"extra__chatmaid__{name}")
        return None if value == "" else value

    def _invalid(self, name: str, value: Any, expected: str) -> ChatmaidConfigurationError:
        return ChatmaidConfigurationError(f"extra {name!r} must be {expected} (got {value!r})")

    def text(self, name: str) -> str | None:
        value = self._raw(name)
        return None if value is None else str(value)

    def url_template(self, name: str, placeholder: str) -> str | None:
        value = self.text(name)
        if value is not None and (
            not value.startswith(("https://", "http://")) or placeholder not in value
        ):
            raise self._invalid(name, value, f"an http(s) URL with {placeholder} in it")
        return value

    def number(self, name: str, *, positive: bool = False) -> float | None:
        value = self._raw(name)
        if value is None:
            return None
        expected = "a number > 0" if positive else "a number >= 0"
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self._invalid(name, value, expected) from None
        if number < 0 or (positive and number == 0):
            raise self._invalid(name, value, expected)
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
