"""Recognising a webhook delivered twice, so its result is published once.

A delivery is known by its ``X-Chatmaid-Delivery`` ID when it has one (the docs do not
promise that header) and always by what it reports: (event, messageId, status) for
message status events, the inbound messageId for replies, and for every other event
the SHA-256 of its body (a retry carries the same body). Each key maps to the publish
of the first delivery, so a retry that arrives while that publish is still waiting for
Kafka joins it instead of publishing again; once it succeeded only a marker is kept.
Memory is bounded: the oldest keys go first.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable

from chatmaid import InboundMessageEvent, MessageEvent, WebhookEvent


def delivery_keys(delivery_id: str | None, event: WebhookEvent) -> list[str]:
    """The keys a delivery is recognised by."""
    keys = [f"delivery:{delivery_id}"] if delivery_id else []
    if isinstance(event, MessageEvent):
        keys.append(f"message:{event.event}:{event.data.message_id}:{event.data.status}")
    elif isinstance(event, InboundMessageEvent):
        keys.append(f"inbound:{event.data.message_id}")
    else:
        keys.append(f"body:{hashlib.sha256(event.raw_body).hexdigest()}")
    return keys


#: Marker of a delivery whose result Kafka acknowledged.
PUBLISHED = "published"

Entry = asyncio.Future[None] | str


class DeliveryLedger:
    """Bounded map delivery key -> the future of its result's ack, or ``PUBLISHED``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def claim(
        self, keys: list[str], start: Callable[[], asyncio.Future[None]]
    ) -> tuple[Entry, bool]:
        """The entry of a delivery: an earlier one (duplicate: True), else ``start()``'s future."""
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None:
                self._remember(keys, entry)
                return entry, True
        future = start()
        future.add_done_callback(lambda done: self._settle(keys, done))
        self._remember(keys, future)
        return future, False

    def __len__(self) -> int:
        return len(self._entries)

    def _settle(self, keys: list[str], future: asyncio.Future[None]) -> None:
        # Success leaves a marker (no future kept alive); failure lets a retry publish.
        ok = not future.cancelled() and future.exception() is None
        for key in keys:
            if self._entries.get(key) is future:
                if ok:
                    self._entries[key] = PUBLISHED
                else:
                    del self._entries[key]

    def _remember(self, keys: list[str], entry: Entry) -> None:
        for key in keys:
            self._entries[key] = entry
            self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
