"""ObservedTransport: API attempts, retries and 429s counted; 429 back-off remembered."""

from __future__ import annotations

import httpx
import pytest

from chatmaid import AsyncChatmaidClient
from chatmaid_kafka.metrics import BridgeMetrics, ObservedTransport


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


async def test_attempts_retries_and_429s_are_counted_and_429_holds() -> None:
    answers = iter(
        [
            httpx.Response(
                429, json={"success": False, "retryAfter": 7}, headers={"Retry-After": "7"}
            ),
            httpx.Response(503, json={"success": False, "error": "Down"}),
            httpx.Response(200, json={"success": True, "data": []}),
        ]
    )
    clock = Clock()
    metrics = BridgeMetrics()
    transport = ObservedTransport(
        httpx.MockTransport(lambda request: next(answers)), metrics, clock=clock
    )
    client = AsyncChatmaidClient(
        "sk_test_metrics0123456789",
        base_url="https://api.test",
        transport=transport,
        requests_per_minute=None,
        sleep=clock.sleep,
        clock=clock,
    )
    assert not transport.held()
    assert await client.list_phone_numbers() == []
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="429") == 1
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="503") == 1
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="200") == 1
    assert sample(metrics, "chatmaid_bridge_api_retries_total") == 2
    assert sample(metrics, "chatmaid_bridge_api_rate_limited_total") == 1
    # The 429 asked for 7 s from when it came; the retries waited some of that.
    clock.now = 100.0 + 6.9
    assert transport.held()
    clock.now = 100.0 + 7.1
    assert not transport.held()
    await client.aclose()


async def test_transport_errors_are_counted() -> None:
    metrics = BridgeMetrics()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = ObservedTransport(httpx.MockTransport(refuse), metrics)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("https://api.test/v1/account")
    assert sample(metrics, "chatmaid_bridge_api_requests_total", status="error") == 1
    assert sample(metrics, "chatmaid_bridge_api_retries_total") == 0
