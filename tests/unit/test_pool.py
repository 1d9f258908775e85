"""Connections are split over small pools (httpcore's per-request work grows with a pool)."""

from __future__ import annotations

import httpx
import pytest

from chatmaid import AsyncChatmaidClient, ChatmaidClient
from chatmaid._pool import CONNECTIONS_PER_SHARD, Shards, shard_limits

from .conftest import MESSAGE, TEST_KEY, Api, envelope


@pytest.mark.parametrize(("total", "sizes"), [(1, [1]), (4, [4]), (5, [3, 2]), (32, [4] * 8)])
def test_shards_hold_exactly_the_connections_asked_for(total: int, sizes: list[int]) -> None:
    limits = shard_limits(total)
    assert [lim.max_connections for lim in limits] == sizes
    assert all((lim.max_connections or 0) <= CONNECTIONS_PER_SHARD for lim in limits)
    assert sum(lim.max_keepalive_connections or 0 for lim in limits) == total


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_connection_counts_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="max_connections must be a positive integer"):
        shard_limits(bad)


def test_each_request_is_lent_the_least_busy_pool() -> None:
    shards = Shards(["a", "b", "c"])  # type: ignore[type-var]
    with shards.lease() as first, shards.lease() as second:
        assert (first, second) == ("a", "b")
        with shards.lease() as third:
            assert third == "c"
        # "c" is free again, "a" and "b" still busy; then "a" once it is given back
        with shards.lease() as fourth:
            assert fourth == "c"
    with shards.lease() as fifth, shards.lease() as sixth, shards.lease() as seventh:
        assert [fifth, sixth, seventh] == ["a", "b", "c"]
        with shards.lease() as eighth:
            assert eighth == "a"  # all equally busy: the first


def test_a_pool_is_given_back_when_its_request_fails() -> None:
    shards = Shards(["a", "b"])  # type: ignore[type-var]
    with pytest.raises(httpx.ConnectError), shards.lease():
        raise httpx.ConnectError("refused")
    with shards.lease() as pool:
        assert pool == "a"


@pytest.mark.parametrize("client_class", [ChatmaidClient, AsyncChatmaidClient])
def test_clients_shard_unless_given_a_transport(client_class: type) -> None:
    sharded = client_class(TEST_KEY, max_connections=32)
    assert len(sharded._pools.pools) == 8
    custom = client_class(
        TEST_KEY, max_connections=32, transport=httpx.MockTransport(lambda _r: httpx.Response(200))
    )
    assert len(custom._pools.pools) == 1


@pytest.mark.parametrize("client_class", [ChatmaidClient, AsyncChatmaidClient])
def test_the_pools_share_one_tls_context(client_class: type) -> None:
    # Making a TLS context costs ~30 ms: 25 pools must not make 25 of them.
    client = client_class(TEST_KEY)
    contexts = {id(pool._transport._pool._ssl_context) for pool in client._pools.pools}
    assert len(client._pools.pools) == 25
    assert len(contexts) == 1


def test_the_clients_keep_no_cookie_a_response_sets(api: Api) -> None:
    # The key authenticates every request; httpx's cookie handling would cost ~20 us each.
    answer = envelope(MESSAGE)
    answer.headers["set-cookie"] = "lb=node-2; Path=/"
    api.respond([answer, envelope(MESSAGE)])
    client = api.client()
    api.call("get_message", "msg_abc123def456", client=client)
    api.call("get_message", "msg_abc123def456", client=client)
    assert "cookie" not in api.requests[1].headers
    assert all(not pool.cookies for pool in client._pools.pools)
