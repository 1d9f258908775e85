"""Accepting sends and moving messages ``pending -> sent | failed`` (and on, if live).

Test keys deliver at once (the answer is already ``sent`` or ``failed``); live keys
answer ``pending`` and settle after ``Settings.live_delay`` seconds. A recipient whose
number ends in one of ``FAILURE_PATTERNS`` fails, the same way in both environments.
In the ``live`` profile a sent message then becomes ``delivered`` and ``read``, one
``live_delay`` apart, each step announced as its webhook event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .responses import ApiError
from .state import ApiKeyRecord, MessageRecord, SandboxState, new_id, utcnow
from .validation import SendRequest

#: Last four digits of the recipient -> (errorCode, errorMessage); the codes are the
#: JS SDK's stable ``MessageErrorCode`` values (the docs name none).
FAILURE_PATTERNS: dict[str, tuple[str, str]] = {
    "0000": ("INVALID_RECIPIENT", "Recipient is not a WhatsApp user"),
    "0001": ("RECIPIENT_NOT_REACHABLE", "Message could not be delivered"),
}

Emit = Callable[[str, Callable[[], dict[str, Any]]], None]
Step = Callable[[MessageRecord], None]


class Lifecycle:
    """Creates messages and settles them, announcing each settlement as an event."""

    def __init__(self, state: SandboxState, emit: Emit) -> None:
        self._state = state
        self._emit = emit
        self._pending: dict[str, tuple[asyncio.TimerHandle, Step]] = {}

    def accept(self, key: ApiKeyRecord, request: SendRequest, raw: bytes) -> MessageRecord:
        """The message for a valid send: the original one if the idempotency key was used.

        ``raw`` is the request body as received, kept on the message for the admin API.

        Synchronous on purpose: nothing awaits between the idempotency lookup and the
        insert, so concurrent sends with one key create exactly one message.
        """
        state = self._state
        if request.idempotency_key is not None:
            original = state.message_for_idempotency_key(request.idempotency_key)
            if original is not None:
                return original
        phone = state.phones.get(request.from_phone_id)
        if phone is None:
            raise ApiError(404, f"Phone {request.from_phone_id} not found in this account")
        if key.environment == "live" and not phone.connected:
            raise ApiError(
                400,
                f"Phone {phone.phone_number} is not connected: reconnect it in the dashboard "
                "or send from a connected phone",
            )
        message = state.add_message(
            MessageRecord(
                id=new_id("msg_"),
                phone_id=phone.id,
                sender=phone.phone_number,
                to=request.to,
                content=request.content,
                media_urls=request.media_urls,
                environment=key.environment,
                created_at=utcnow(),
                idempotency_key=request.idempotency_key,
                api_key_id=key.id,
                request_body=raw.decode("utf-8", "replace"),
            )
        )
        if key.environment == "test":
            self._settle(message)
        else:
            self._later(message, self._settle)
        return message

    def advance(self, message: MessageRecord) -> bool:
        """Take the message's next step now (``pending -> sent``, ...); False if none is due."""
        scheduled = self._pending.get(message.id)
        if scheduled is None:
            return False
        handle, step = scheduled
        handle.cancel()
        step(message)
        return True

    def _later(self, message: MessageRecord, step: Step) -> None:
        loop = asyncio.get_running_loop()
        delay = self._state.settings.live_delay
        self._pending[message.id] = (loop.call_later(delay, step, message), step)

    def _settle(self, message: MessageRecord) -> None:
        self._pending.pop(message.id, None)
        failure = FAILURE_PATTERNS.get(message.to[-4:])
        if failure is None:
            message.mark_sent(utcnow())
        else:
            message.mark_failed(utcnow(), *failure)
        self._announce(message)
        if message.status == "sent" and self._state.settings.live:
            self._later(message, self._deliver)

    def _deliver(self, message: MessageRecord) -> None:
        message.mark_delivered(utcnow())
        self._announce(message)
        self._later(message, self._read)

    def _read(self, message: MessageRecord) -> None:
        self._pending.pop(message.id, None)
        message.mark_read(utcnow())
        self._announce(message)

    def _announce(self, message: MessageRecord) -> None:
        self._state.changes.touch("message", message.id)
        live = self._state.settings.live
        self._emit(f"message.{message.status}", lambda: message.event(live=live))

    def cancel_all(self) -> None:
        """Forget every pending transition (on reset or shutdown)."""
        for handle, _ in self._pending.values():
            handle.cancel()
        self._pending.clear()
