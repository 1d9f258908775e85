"""Which phone sends an event: its ``fromPhoneId``, its ``from`` number, or the default.

A phone ID is used as given (the API answers 404 for an unknown one). An E.164 number,
or no sender at all, is resolved by the core's ``resolve_sender``, which reuses the
phone list for ``max_age`` seconds. Resolutions run one at a time, so a burst of
events arriving with a cold cache costs one phone-list fetch, not one each.
"""

from __future__ import annotations

import asyncio

from chatmaid import AsyncChatmaidClient, PhoneNumber, is_e164

from .events import NotifyEvent


class SenderResolver:
    """Turns an event's sender (or the configured default) into a phone ID."""

    def __init__(
        self, client: AsyncChatmaidClient, default: str | None = None, *, ttl: float = 300.0
    ) -> None:
        self._client = client
        self._default = default
        self._ttl = ttl
        self._lock = asyncio.Lock()

    async def phone_id(self, event: NotifyEvent) -> str:
        """The phone ID to send ``event`` from; ``NoConnectedPhoneError`` if none fits."""
        reference = event.sender or self._default
        if reference is not None and not is_e164(reference):
            return reference
        return (await self._resolve(reference)).id

    async def check_default(self) -> PhoneNumber:
        """Resolve the default sender now, so a wrong key or sender shows at start."""
        return await self._resolve(self._default)

    async def _resolve(self, reference: str | None) -> PhoneNumber:
        async with self._lock:
            return await self._client.resolve_sender(reference, max_age=self._ttl)
