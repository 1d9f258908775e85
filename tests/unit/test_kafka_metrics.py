"""ApiWatch: API attempts, retries and 429s counted from the core's observer events;
the 429 body's ``retryAfter`` holds the key (no ``Retry-After`` header needed)."""

from __future__ import annotations

import httpx
import pytest

from chatmaid import AsyncChatmaidClient, ChatmaidTransportError
from chatmaid_kafka.metrics import ApiWatch, BridgeMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def sample(metrics: BridgeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def client(answer: httpx.MockTransport, watch: ApiWatch, clock: Clock) -> AsyncChatmaidClient:
    return AsyncChatmaidClient(
        "sk_test_metrics0123456789",
        base_url="https://api.test",
        transport=answer,
        requests_per_minute=None,
        max_retries=2,
        observers=[watch],
        sleep=clock.sleep,
        clock=clock,
    )


async def test_attempts_retries_and_429s_are_counted_and_a_body_only_429_holds() -> None:
    answers = iter(
        [
            # The documented 429: retryAfter in the body, no Retry-After header.
            httpx.Response(
                429, json={"success": False, "error": "Rate limit exceeded", "retryAfter": 60}
            ),
            httpx.Response(503, json={"success": False, "error": "Down"}),
            httpx.Response(200, json={"success": True, "data": []}),
        ]
    )
    clock = Clock()
    metrics = BridgeMetrics()
    watch = ApiWatch(metrics, clock=clock)
    api = client(httpx.MockTransport(lambda request: next(answers)), watch, clock)
    assert not watch.held()
    started = clock.now
    assert await api.list_phone_numbers() == []
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="429") == 1
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="503") == 1
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="200") == 1
    assert sample(metrics, "chatmaid_bridge_api_retries_total") == 2
    assert sample(metrics, "chatmaid_bridge_api_rate_limited_total") == 1
    # The core waited the 429's 60 s plus up to 10 % jitter; the hold covers that wait.
    assert clock.now - started >= 60
    clock.now = started + 59.9
    assert watch.held()
    clock.now = started + 66.1
    assert not watch.held()
    await api.aclose()


async def test_transport_errors_are_counted() -> None:
    clock = Clock()
    metrics = BridgeMetrics()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    api = client(httpx.MockTransport(refuse), ApiWatch(metrics, clock=clock), clock)
    with pytest.raises(ChatmaidTransportError):
        await api.get_account()
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="error") == 3
    assert sample(metrics, "chatmaid_bridge_api_retries_total") == 2
    await api.aclose()
