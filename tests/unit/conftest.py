"""One harness drives the sync and async clients through the same test cases.

``api`` is parametrised over both; a test calls ``api.call("get_message", "msg_1")``
and gets the same result (or exception) from either client. Time is fake: sleeps are
recorded and advance the clock instantly.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from chatmaid import AsyncChatmaidClient, ChatmaidClient

TEST_KEY = "sk_test_unit0123456789abcd"
Handler = Callable[[httpx.Request], httpx.Response]


def envelope(data: Any, status: int = 200) -> httpx.Response:
    """A success answer."""
    return httpx.Response(status, json={"success": True, "data": data})


def error(status: int, message: list[str] | None = None, path: str = "/v1/x") -> httpx.Response:
    """An error answer in the documented envelope."""
    return httpx.Response(
        status,
        json={
            "success": False,
            "error": {400: "Bad Request", 401: "Unauthorized"}.get(status, "Error"),
            "message": message or ["something went wrong"],
            "statusCode": status,
            "timestamp": "2026-02-06T14:22:30.000Z",
            "path": path,
        },
    )


MESSAGE: dict[str, Any] = {
    "id": "msg_abc123def456",
    "from": "+15551234567",
    "to": "+15557654321",
    "content": "Hello",
    "mediaUrls": [],
    "environment": "test",
    "status": "sent",
    "createdAt": "2026-02-06T14:18:33.000Z",
    "sentAt": "2026-02-06T14:18:33.120Z",
    "failedAt": None,
    "errorCode": None,
    "errorMessage": None,
}


@dataclass
class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@dataclass
class Api:
    """A client of one flavour, its recorded requests and its fake time."""

    flavour: str
    time: FakeTime
    requests: list[httpx.Request]
    handler: list[Handler]
    loop: asyncio.AbstractEventLoop
    kwargs: dict[str, Any] = field(default_factory=dict)

    def respond(self, handler: Handler | list[httpx.Response]) -> None:
        """Answer with ``handler``, or with these responses in turn."""
        if isinstance(handler, list):
            answers = iter(handler)
            self.handler[0] = lambda _request: next(answers)
        else:
            self.handler[0] = handler

    def client(self, **overrides: Any) -> ChatmaidClient | AsyncChatmaidClient:
        options: dict[str, Any] = {
            "api_key": TEST_KEY,
            "base_url": "https://api.test",
            "requests_per_minute": None,
            "clock": self.time.clock,
            **self.kwargs,
            **overrides,
        }

        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            self.requests.append(request)
            return self.handler[0](request)

        transport = httpx.MockTransport(record)
        if self.flavour == "sync":
            return ChatmaidClient(transport=transport, sleep=self.time.sleep, **options)
        return AsyncChatmaidClient(transport=transport, sleep=self.time.async_sleep, **options)

    def call(self, method: str, *args: Any, client: Any = None, **kwargs: Any) -> Any:
        """Call ``method`` on a (new, unless given) client and return its result."""
        target = client or self.client()
        result = getattr(target, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            return self.loop.run_until_complete(result)
        if inspect.isasyncgen(result):
            return self.loop.run_until_complete(_collect(result))
        if inspect.isgenerator(result):
            return list(result)
        return result


async def _collect(items: Any) -> list[Any]:
    return [item async for item in items]


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """The same cases against ``ChatmaidClient`` and ``AsyncChatmaidClient``."""
    loop = asyncio.new_event_loop()
    harness = Api(
        flavour=request.param,
        time=FakeTime(),
        requests=[],
        handler=[lambda _request: envelope(MESSAGE)],
        loop=loop,
    )
    yield harness
    loop.close()
