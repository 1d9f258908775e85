"""Every endpoint and helper, written once as a flow (see ``_flow``).

The sync and async clients wrap these one-to-one; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter
from typing_extensions import NotRequired, Unpack

from ._config import ClientConfig
from ._errors import (
    ChatmaidTransportError,
    ChatmaidValidationError,
    DeliveryTimeoutError,
    NoConnectedPhoneError,
    RateLimitedError,
    ServerError,
)
from ._flow import Flow, Sleep
from ._models import (
    Account,
    Message,
    Page,
    PhoneNumber,
    PhoneStatus,
    SendMessageRequest,
    Usage,
)
from ._responses import payload_of
from ._retry import logger, send_with_retries
from ._validation import is_e164, send_problems
from .idempotency import random_idempotency_key

ModelT = TypeVar("ModelT", bound=BaseModel)

_PHONE_LIST = TypeAdapter(list[PhoneNumber])
_STATUSES = ("pending", "sent", "failed")
_PERIODS = ("day", "week", "month")


class SendFields(TypedDict):
    """Fields of a send: ``from_phone_id`` and ``to`` (E.164) are required; ``content``
    (at most 4096 characters) and/or ``media_urls`` (https); an ``idempotency_key``
    (at most 64 characters; a random one is used when absent)."""

    from_phone_id: str
    to: str
    content: NotRequired[str | None]
    media_urls: NotRequired[Sequence[str] | None]
    idempotency_key: NotRequired[str | None]


class WaitOptions(TypedDict, total=False):
    """How ``wait_for_terminal`` polls: ``timeout`` (s, default 300), ``poll_interval``
    (s, default 2), growing by ``backoff`` (default 1.5) up to ``max_poll_interval``
    (s, default 30)."""

    timeout: float
    poll_interval: float
    max_poll_interval: float
    backoff: float


class MessageFilters(TypedDict, total=False):
    """Filters of ``list_messages``: ``status`` (pending, sent, failed), the sender's
    ``phone_number_id``, and ``environment`` (test or live; default: the key's)."""

    status: str | None
    phone_number_id: str | None
    environment: str | None


class Operations:
    """Builds requests, applies the retry policy and parses answers into models."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._clock = config.clock
        self._headers = config.headers()
        self._phones: tuple[float, list[PhoneNumber]] | None = None

    # -- messages -------------------------------------------------------------------

    def send_message(self, **fields: Unpack[SendFields]) -> Flow[Message]:
        """``POST /v1/messages/send``; always with an idempotency key."""
        from_phone_id, to = fields["from_phone_id"], fields["to"]
        content, idempotency_key = fields.get("content"), fields.get("idempotency_key")
        media_urls = fields.get("media_urls")
        urls = list(media_urls) if media_urls is not None else None
        problems = send_problems(
            to=to, content=content, media_urls=urls, idempotency_key=idempotency_key
        )
        if not isinstance(from_phone_id, str) or not from_phone_id.strip():
            problems.insert(0, "fromPhoneId must be a phone ID of your account")
        if problems:
            raise ChatmaidValidationError(problems, where="send_message")
        body = SendMessageRequest(
            from_phone_id=from_phone_id,
            to=to,
            content=content,
            media_urls=urls,
            idempotency_key=idempotency_key or random_idempotency_key(),
        )
        return self._model(Message, "POST", "/v1/messages/send", json=body.to_api())

    def get_message(self, message_id: str) -> Flow[Message]:
        """``GET /v1/messages/:messageId``."""
        return self._model(Message, "GET", f"/v1/messages/{_segment(message_id, 'message_id')}")

    def list_messages(
        self, *, page: int = 1, limit: int = 20, **filters: Unpack[MessageFilters]
    ) -> Flow[Page[Message]]:
        """``GET /v1/messages``: one page, newest first."""
        status = filters.get("status")
        environment = filters.get("environment")
        problems = []
        if not isinstance(page, int) or page < 1:
            problems.append(f"page must be an integer >= 1 (got {page!r})")
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            problems.append(f"limit must be an integer from 1 to 100 (got {limit!r})")
        if status is not None and status not in _STATUSES:
            problems.append(f"status must be one of {', '.join(_STATUSES)} (got {status!r})")
        if environment is not None and environment not in ("test", "live"):
            problems.append(f"environment must be test or live (got {environment!r})")
        if problems:
            raise ChatmaidValidationError(problems, where="list_messages")
        params: dict[str, Any] = {"page": page, "limit": limit}
        optional = {
            "status": status,
            "phoneNumberId": filters.get("phone_number_id"),
            "environment": environment,
        }
        params.update({name: value for name, value in optional.items() if value is not None})
        return self._model(Page[Message], "GET", "/v1/messages", params=params)

    # -- phone numbers --------------------------------------------------------------

    def list_phone_numbers(self) -> Flow[list[PhoneNumber]]:
        """``GET /v1/phone-numbers``."""
        data = yield from self._data("GET", "/v1/phone-numbers")
        return _PHONE_LIST.validate_python(data)

    def get_phone_number(self, phone: str) -> Flow[PhoneNumber]:
        """``GET /v1/phone-numbers/:id``, by phone ID or E.164 number."""
        return self._model(PhoneNumber, "GET", f"/v1/phone-numbers/{_segment(phone, 'phone')}")

    def get_phone_status(self, phone: str) -> Flow[PhoneStatus]:
        """``GET /v1/phone-numbers/:id/status``, by phone ID or E.164 number."""
        path = f"/v1/phone-numbers/{_segment(phone, 'phone')}/status"
        return self._model(PhoneStatus, "GET", path)

    # -- account --------------------------------------------------------------------

    def get_account(self) -> Flow[Account]:
        """``GET /v1/account``."""
        return self._model(Account, "GET", "/v1/account")

    def get_usage(self, period: str = "month") -> Flow[Usage]:
        """``GET /v1/account/usage`` for ``day``, ``week`` or ``month``."""
        if period not in _PERIODS:
            raise ChatmaidValidationError(
                [f"period must be one of day, week, month (got {period!r})"], where="get_usage"
            )
        return self._model(Usage, "GET", "/v1/account/usage", params={"period": period})

    # -- helpers --------------------------------------------------------------------

    def resolve_sender(
        self, phone: str | None = None, *, max_age: float = 60.0
    ) -> Flow[PhoneNumber]:
        """The sender for ``phone``: a phone ID, an E.164 number, or ``None``.

        ``None`` picks the first connected phone. The phone list is reused for
        ``max_age`` seconds (0: always fetched) and fetched again before a phone is
        declared unknown. An unknown phone, or no connected phone at all, raises
        ``NoConnectedPhoneError`` naming what the account has.
        """
        cached = self._phones
        stale = cached is None or self._clock() - cached[0] >= max_age
        phones = (yield from self._fetch_phones()) if stale or cached is None else cached[1]
        sender = _pick_sender(phones, phone)
        if sender is None and not stale:
            phones = yield from self._fetch_phones()
            sender = _pick_sender(phones, phone)
        if sender is not None:
            return sender
        if phone is None:
            raise NoConnectedPhoneError(
                "no connected phone in this account"
                + _listing(phones)
                + "; connect one in the dashboard or name a sender explicitly"
            )
        raise NoConnectedPhoneError(
            f"sender {phone!r} is not a phone of this account" + _listing(phones)
        )

    def _fetch_phones(self) -> Flow[list[PhoneNumber]]:
        phones = yield from self.list_phone_numbers()
        self._phones = (self._clock(), phones)
        return phones

    def wait_for_terminal(self, message_id: str, **options: Unpack[WaitOptions]) -> Flow[Message]:
        """Poll a message until its status is terminal (``sent``, ``failed``, ...).

        Polling follows ``WaitOptions``; after ``timeout`` seconds
        ``DeliveryTimeoutError`` is raised with the last status seen.
        """
        timeout = options.get("timeout", 300.0)
        poll_interval = options.get("poll_interval", 2.0)
        max_poll_interval = options.get("max_poll_interval", 30.0)
        backoff = options.get("backoff", 1.5)
        if poll_interval <= 0 or timeout <= 0 or backoff < 1:
            raise ChatmaidValidationError(
                ["poll_interval and timeout must be positive and backoff at least 1"],
                where="wait_for_terminal",
            )
        deadline = self._clock() + timeout
        interval = poll_interval
        status = "unknown"
        while True:
            try:
                message = yield from self.get_message(message_id)
            except (RateLimitedError, ServerError, ChatmaidTransportError) as exc:
                # This poll's own retries are spent; a wait outlives a short outage.
                logger.warning("polling %s failed (%s); polling on", message_id, exc)
            else:
                if message.is_terminal:
                    return message
                status = message.status
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise DeliveryTimeoutError(message_id, status, timeout)
            yield Sleep(min(interval, remaining))
            interval = min(interval * backoff, max_poll_interval)

    # -- plumbing -------------------------------------------------------------------

    def _data(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Flow[Any]:
        request = httpx.Request(
            method,
            self.config.base_url + path,
            params=params,
            json=json,
            headers=self._headers,
        )
        response = yield from send_with_retries(
            request, self.config.retry, self.config.bucket, self._clock
        )
        return payload_of(response)

    def _model(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Flow[ModelT]:
        data = yield from self._data(method, path, params=params, json=json)
        return model.model_validate(data)


def _segment(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ChatmaidValidationError([f"{name} must be a non-empty string"], where=name)
    return quote(value, safe="")


def _pick_sender(phones: list[PhoneNumber], phone: str | None) -> PhoneNumber | None:
    if phone is None:
        return next((candidate for candidate in phones if candidate.is_connected), None)
    key = "phone_number" if is_e164(phone) else "id"
    return next((candidate for candidate in phones if getattr(candidate, key) == phone), None)


def _listing(phones: list[PhoneNumber]) -> str:
    if not phones:
        return " (it has no phones)"
    listed = ", ".join(f"{p.id} {p.phone_number} ({p.connection_status})" for p in phones)
    return f" (it has: {listed})"
