"""Which phone sends: a phone ID as given, or an E.164 number / nothing via the phone list.

One ``PhoneBook`` per client caches the account's phone list for every thread and
asyncio task using that client. When the list must be fetched, one caller fetches and
the others wait for its answer, so a burst of sends on a cold cache costs one
``GET /v1/phone-numbers``, not one each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ._errors import NoConnectedPhoneError
from ._flow import Flow, Sleep
from ._models import PhoneNumber
from ._ratelimit import Clock
from ._validation import is_e164

#: How often a caller waiting for another caller's fetch looks for its answer (s).
SHARED_FETCH_POLL = 0.01


def is_phone_id(phone: str | None) -> bool:
    """True when ``phone`` names a phone by ID (used as given, no lookup needed)."""
    return phone is not None and not is_e164(phone)


class PhoneBook:
    """The account's phone list, shared by every call of one client."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._phones: list[PhoneNumber] | None = None
        self._fetched_at = float("-inf")
        self._fetching = False

    def cached(self, *, max_age: float) -> list[PhoneNumber] | None:
        """The cached list if it is younger than ``max_age`` seconds, else ``None``."""
        with self._lock:
            young = self._clock() - self._fetched_at < max_age
            return self._phones if young else None

    def fetched_since(self, moment: float) -> list[PhoneNumber] | None:
        """The list if a fetch stored it at or after ``moment``, else ``None``."""
        with self._lock:
            return self._phones if self._fetched_at >= moment else None

    def claim_fetch(self) -> bool:
        """True if the caller should fetch now; False while another caller fetches."""
        with self._lock:
            if self._fetching:
                return False
            self._fetching = True
            return True

    def finish_fetch(self, phones: list[PhoneNumber] | None) -> None:
        """Store what the claimed fetch got (``None``: it failed) and release the claim."""
        with self._lock:
            self._fetching = False
            if phones is not None:
                self._phones = phones
                self._fetched_at = self._clock()

    def resolve(
        self,
        phone: str | None,
        *,
        max_age: float,
        fetch: Callable[[], Flow[list[PhoneNumber]]],
    ) -> Flow[PhoneNumber]:
        """The sender for ``phone`` (ID, E.164 or ``None``: the first connected phone).

        The list is reused for ``max_age`` seconds and fetched again before a phone is
        declared unknown.
        """
        phones = self.cached(max_age=max_age)
        fetched = phones is None
        if phones is None:
            phones = yield from self._shared_fetch(fetch)
        sender = _pick(phones, phone)
        if sender is None and not fetched:
            phones = yield from self._shared_fetch(fetch)
            sender = _pick(phones, phone)
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

    def _shared_fetch(
        self, fetch: Callable[[], Flow[list[PhoneNumber]]]
    ) -> Flow[list[PhoneNumber]]:
        asked_at = self._clock()
        while not self.claim_fetch():
            yield Sleep(SHARED_FETCH_POLL)
            shared = self.fetched_since(asked_at)
            if shared is not None:
                return shared
        phones: list[PhoneNumber] | None = None
        try:
            phones = yield from fetch()
        finally:
            self.finish_fetch(phones)
        return phones


def _pick(phones: list[PhoneNumber], phone: str | None) -> PhoneNumber | None:
    if phone is None:
        return next((candidate for candidate in phones if candidate.is_connected), None)
    if is_e164(phone):
        return next((candidate for candidate in phones if candidate.phone_number == phone), None)
    return next((candidate for candidate in phones if candidate.id == phone), None)


def _listing(phones: list[PhoneNumber]) -> str:
    if not phones:
        return " (it has no phones)"
    listed = ", ".join(f"{p.id} {p.phone_number} ({p.connection_status})" for p in phones)
    return f" (it has: {listed})"
