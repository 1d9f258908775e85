"""A deadline bounds the whole call: limiter waits, 429 waits and each attempt's timeouts."""

from __future__ import annotations

import httpx
import pytest

from chatmaid import DeadlineExceededError, RateLimitedError, RetryPolicy, TokenBucket

from .conftest import MESSAGE, Api, envelope


def test_a_bucket_held_by_another_callers_429_does_not_outlive_the_deadline(api: Api) -> None:
    bucket = TokenBucket(6000, burst=10, clock=api.time.clock)
    bucket.hold(60)  # another caller on this key got "retryAfter: 60"
    client = api.client(rate_limiter=bucket, deadline=5)
    with pytest.raises(DeadlineExceededError, match="5s deadline ran out waiting for the rate"):
        api.call("get_message", "msg_1", client=client)
    assert api.time.sleeps == []
    assert api.requests == []


def test_a_429_wait_longer_than_the_time_left_gives_up_at_once(api: Api) -> None:
    api.respond([httpx.Response(429, json={"success": False, "error": "Rate", "retryAfter": 60})])
    client = api.client(deadline=5, retry=RetryPolicy(retry_after_jitter=0.0))
    with pytest.raises(RateLimitedError):
        api.call("get_message", "msg_1", client=client)
    assert api.time.sleeps == []


def test_each_attempt_timeout_is_capped_by_the_time_left(api: Api) -> None:
    api.respond(lambda _r: envelope(MESSAGE))
    client = api.client(deadline=3, timeout=10)
    api.call("get_message", "msg_1", client=client)
    timeouts = api.requests[0].extensions["timeout"]
    assert set(timeouts) == {"connect", "read", "write", "pool"}
    assert all(value <= 3 for value in timeouts.values())


def test_without_a_deadline_the_clients_timeout_applies(api: Api) -> None:
    api.respond(lambda _r: envelope(MESSAGE))
    api.call("get_message", "msg_1", client=api.client(timeout=7))
    assert api.requests[0].extensions["timeout"]["read"] == 7
