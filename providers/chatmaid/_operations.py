"""Every endpoint and helper, written once as a flow (see ``_flow``).

The sync and async clients wrap these one-to-one; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from ._config import ClientConfig
from ._errors import (
    ChatmaidError,
    ChatmaidTransportError,
    ChatmaidValidationError,
    DeliveryTimeoutError,
    IdempotencyConflictError,
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
from ._retry import Attempts, logger, send_with_retries
from ._senders import PhoneBook, is_phone_id
from ._validation import send_problems
from .idempotency import conflicts, random_idempotency_key

ModelT = TypeVar("ModelT", bound=BaseModel)

_PHONE_LIST = TypeAdapter(list[PhoneNumber])
#: The docs' statuses, and the live API's ``delivered`` and ``read`` (its JS SDK's).
_STATUSES = ("pending", "sent", "failed", "delivered", "read")
_PERIODS = ("day", "week", "month")


class Operations:
    """Builds requests, applies the retry policy and parses answers into models."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._clock = config.clock
        self._headers = httpx.Headers(config.headers())
        self._attempts = Attempts(
            policy=config.retry,
            bucket=config.bucket,
            clock=config.clock,
            timeout=config.timeout,
            observers=config.observers,
        )
        self._phones = PhoneBook(config.clock)

    # -- messages -------------------------------------------------------------------

    def send_message(
        self,
        *,
        to: str,
        content: str | None = None,
        media_urls: Sequence[str] | None = None,
        from_phone: str | None = None,
        idempotency_key: str | None = None,
    ) -> Flow[Message]:
        """``POST /v1/messages/send``; always with an idempotency key.

        ``from_phone`` is a phone ID (sent as given), an E.164 number or ``None`` (the
        first connected phone), resolved through the cached phone list.
        """
        urls = list(media_urls) if media_urls is not None else None
        problems = send_problems(
            to=to,
            content=content,
            media_urls=urls,
            idempotency_key=idempotency_key,
            strict_numbers=self.config.strict_numbers,
        )
        if from_phone is not None and (not isinstance(from_phone, str) or not from_phone.strip()):
            problems.insert(0, "from_phone must be a phone ID or E.164 number of your account")
        if problems:
            raise ChatmaidValidationError(problems, where="send_message")
        key = idempotency_key or random_idempotency_key()
        try:
            sender = None
            if from_phone is None or not is_phone_id(from_phone):
                sender = yield from self.resolve_sender(from_phone)
            body = SendMessageRequest(
                from_phone_id=sender.id if sender is not None else from_phone,
                to=to,
                content=content,
                media_urls=urls,
                idempotency_key=key,
            ).to_api()
            message = yield from self._model(
                Message, "POST", "/v1/messages/send", json=body, idempotency_key=key
            )
        except ChatmaidError as exc:
            exc.idempotency_key = key
            raise
        if idempotency_key is None:
            return message  # a fresh random key cannot belong to another message
        differences = conflicts(
            body,
            message,
            environment=self.config.environment,
            sender_number=sender.phone_number if sender is not None else None,
        )
        if differences:
            raise IdempotencyConflictError(key, differences, message)
        return message

    def get_message(self, message_id: str) -> Flow[Message]:
        """``GET /v1/messages/:messageId``."""
        return self._model(Message, "GET", f"/v1/messages/{_segment(message_id, 'message_id')}")

    def list_messages(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        status: str | None = None,
        phone_number_id: str | None = None,
        environment: str | None = None,
    ) -> Flow[Page[Message]]:
        """``GET /v1/messages``: one page, newest first."""
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
            "phoneNumberId": phone_number_id,
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

        ``None`` picks the first connected phone. The phone list is shared by every
        call of this client and reused for ``max_age`` seconds (0: always fetched); it
        is fetched again before a phone is declared unknown. An unknown phone, or no
        connected phone at all, raises ``NoConnectedPhoneError`` naming what the
        account has.
        """
        return self._phones.resolve(phone, max_age=max_age, fetch=self.list_phone_numbers)

    def wait_for_terminal(
        self,
        message_id: str,
        *,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        backoff: float = 1.5,
    ) -> Flow[Message]:
        """Poll a message until its status is terminal (``sent``, ``failed``, ...).

        Polls every ``poll_interval`` seconds, growing by ``backoff`` up to
        ``max_poll_interval``; after ``timeout`` seconds ``DeliveryTimeoutError`` is
        raised with the last status seen.
        """
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
        idempotency_key: str | None = None,
    ) -> Flow[Any]:
        request = httpx.Request(
            method,
            _url(self.config.base_url + path),
            params=params,
            json=json,
            headers=self._headers,
        )
        response = yield from send_with_retries(
            request, self._attempts, idempotency_key=idempotency_key
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
        idempotency_key: str | None = None,
    ) -> Flow[ModelT]:
        data = yield from self._data(
            method, path, params=params, json=json, idempotency_key=idempotency_key
        )
        return model.model_validate(data)


@lru_cache(maxsize=1024)
def _url(url: str) -> httpx.URL:
    """``url`` parsed once: parsing is a third of building a request (URLs are immutable)."""
    return httpx.URL(url)


def _segment(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ChatmaidValidationError([f"{name} must be a non-empty string"], where=name)
    return quote(value, safe="")
