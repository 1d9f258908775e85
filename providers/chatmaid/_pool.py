"""The clients' connection pools: several small httpx pools instead of one large one.

httpcore's pool checks every pooled connection when a request starts and when one
ends, so its cost per request grows with its size: one pool of 32 busy connections
spends most of a send's CPU there. ``Shards`` keeps ``max_connections`` split over pools
of at most ``CONNECTIONS_PER_SHARD`` and hands requests to them in turn, which keeps
that cost flat however many connections the caller wants.

A request goes to the pool with the fewest requests in flight: handed out in turn,
requests pile up in a pool whose answers come late (and wait there for a connection)
while another pool's connections stand idle.

The pools keep no cookies (``cookieless``): the API authenticates each request by its
key and has no use for them, and httpx's cookie extraction costs ~20 µs a response,
a quarter of the core's own work on a send.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import httpx

#: Connections per httpx pool; measured best on the bridge's send path (benchmarks/).
CONNECTIONS_PER_SHARD = 4

PoolT = TypeVar("PoolT", httpx.Client, httpx.AsyncClient)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep none of ``response``'s cookies."""


def cookieless(pool: PoolT) -> PoolT:
    """``pool``, made to skip cookie extraction on every response (httpx has no option)."""
    pool._cookies = _NoCookies()
    return pool


def shard_limits(max_connections: int) -> list[httpx.Limits]:
    """The limits of each pool that together hold ``max_connections``."""
    if not isinstance(max_connections, int) or max_connections < 1:
        raise ValueError(f"max_connections must be a positive integer, got {max_connections!r}")
    shards = math.ceil(max_connections / CONNECTIONS_PER_SHARD)
    base, extra = divmod(max_connections, shards)
    sizes = [base + (1 if index < extra else 0) for index in range(shards)]
    return [httpx.Limits(max_connections=n, max_keepalive_connections=n) for n in sizes]


class Shards(Generic[PoolT]):
    """Pools, each request lent the least busy one (threads and tasks may share them)."""

    def __init__(self, pools: Sequence[PoolT]) -> None:
        self.pools: tuple[PoolT, ...] = tuple(pools)
        self._in_flight = [0] * len(self.pools)
        self._lock = threading.Lock()

    @classmethod
    def build(
        cls,
        client_class: type[PoolT],
        *,
        timeout: httpx.Timeout,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
        max_connections: int,
    ) -> Shards[PoolT]:
        """One cookieless ``client_class`` pool per shard, sharing one TLS context (making
        one costs ~30 ms); a single pool when the caller brings its own transport."""
        # Client or AsyncClient, each with its kind of transport (the callers' types say).
        options: dict[str, Any] = {
            "timeout": timeout, "transport": transport, "verify": httpx.create_ssl_context()
        }  # fmt: skip

        def pool(limits: httpx.Limits) -> PoolT:
            return cookieless(client_class(limits=limits, **options))

        if transport is not None:
            return cls([pool(httpx.Limits(max_connections=max_connections))])
        return cls([pool(limits) for limits in shard_limits(max_connections)])

    @contextmanager
    def lease(self) -> Iterator[PoolT]:
        """The pool with the fewest requests in flight, counted as busy until exit."""
        counts = self._in_flight
        with self._lock:
            index = counts.index(min(counts))
            counts[index] += 1
        try:
            yield self.pools[index]
        finally:
            with self._lock:
                counts[index] -= 1
