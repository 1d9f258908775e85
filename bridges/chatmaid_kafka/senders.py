"""Which phone sends an event: its ``fromPhoneId``, its ``from`` number, or the default.

A phone ID is used as given (the API answers 404 for an unknown one). An E.164 number,
or no sender at all, is resolved by the core's ``resolve_sender`` through the phone
list, and the answer is cached for a while so a stream of events costs one lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from chatmaid import AsyncChatmaidClient, PhoneNumber, is_e164

from .events import NotifyEvent


class SenderResolver:
    """Turns an event's sender (or the configured default) into a phone ID, with a cache."""

    def __init__(
        self,
        client: AsyncChatmaidClient,
        default: str | None = None,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._default = default
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str | None, tuple[str, float]] = {}
        self._locks: dict[str | None, asyncio.Lock] = {}

    async def phone_id(self, event: NotifyEvent) -> str:
        """The phone ID to send ``event`` from; ``NoConnectedPhoneError`` if none fits."""
        reference = event.sender or self._default
        if reference is not None and not is_e164(reference):
            return reference
        cached = self._fresh(reference)
        if cached is not None:
            return cached
        # One lookup per reference at a time: a burst of events waits for the first.
        lock = self._locks.setdefault(reference, asyncio.Lock())
        async with lock:
            cached = self._fresh(reference)
            if cached is not None:
                return cached
            phone = await self._client.resolve_sender(reference)
            self._cache[reference] = (phone.id, self._clock() + self._ttl)
            return phone.id

    async def check_default(self) -> PhoneNumber:
        """Resolve the default sender now, so a wrong key or sender shows at start."""
        phone = await self._client.resolve_sender(self._default)
        self._cache[self._default] = (phone.id, self._clock() + self._ttl)
        return phone

    def _fresh(self, reference: str | None) -> str | None:
        entry = self._cache.get(reference)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]
