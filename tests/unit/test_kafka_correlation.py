"""The correlation index and the delivery ledger: bounded, thread-safe, awaitable."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading

import pytest

from chatmaid.webhooks import parse_event
from chatmaid_kafka.correlation import CorrelationIndex
from chatmaid_kafka.dedupe import PUBLISHED, DeliveryLedger, delivery_keys
from chatmaid_kafka.records import Correlation


async def test_a_known_message_is_answered_at_once() -> None:
    index = CorrelationIndex(10)
    index.put("msg_1", Correlation(event_id="e1"))
    found = await index.wait_for("msg_1", timeout=5)
    assert found is not None
    assert found.event_id == "e1"


async def test_a_waiter_is_woken_by_a_put_from_another_thread() -> None:
    index = CorrelationIndex(10)
    timer = threading.Timer(0.05, index.put, args=("msg_2", Correlation(event_id="e2")))
    timer.start()
    found = await index.wait_for("msg_2", timeout=5)
    assert found is not None
    assert found.event_id == "e2"


async def test_an_unknown_message_times_out_to_none_and_leaves_no_waiter() -> None:
    index = CorrelationIndex(10)
    assert await index.wait_for("msg_3", timeout=0.01) is None
    assert await index.wait_for("msg_3", timeout=0) is None
    index.put("msg_3", Correlation())  # nobody waits any more: nothing to wake
    assert index.get("msg_3") is not None


async def test_many_waiters_for_one_message() -> None:
    index = CorrelationIndex(10)
    waiters = [asyncio.ensure_future(index.wait_for("m", timeout=5)) for _ in range(3)]
    await asyncio.sleep(0)
    index.put("m", Correlation(event_id="e"))
    assert [w.event_id for w in await asyncio.gather(*waiters) if w] == ["e"] * 3


def test_the_index_forgets_its_oldest_entries() -> None:
    index = CorrelationIndex(2)
    for name in ("a", "b", "c"):
        index.put(name, Correlation(event_id=name))
    assert len(index) == 2
    assert index.get("a") is None
    assert index.get("c") is not None
    with pytest.raises(ValueError, match="at least 1"):
        CorrelationIndex(0)


def test_delivery_keys() -> None:
    def event(name: str, data: dict[str, str]) -> bytes:
        stamp = "2026-02-06T14:20:00.000Z"
        return json.dumps({"event": name, "timestamp": stamp, "data": data}).encode()

    message = event("message.sent", {"messageId": "msg_1", "status": "sent"})
    reply = event("message.received", {"messageId": "msg_in_1", "from": "+15557654321"})
    phone = event("phone.connected", {"phoneId": "p1", "status": "connected"})
    assert delivery_keys("dlv_1", parse_event(message)) == [
        "delivery:dlv_1",
        "message:message.sent:msg_1:sent",
    ]
    assert delivery_keys(None, parse_event(reply)) == ["inbound:msg_in_1"]
    # Any other event is known by its body: a retry carries the same bytes.
    assert delivery_keys(None, parse_event(phone)) == [f"body:{hashlib.sha256(phone).hexdigest()}"]


async def test_the_ledger_keeps_a_marker_after_success_and_forgets_failures() -> None:
    ledger = DeliveryLedger(10)

    async def ok() -> None:
        return None

    async def broken() -> None:
        raise RuntimeError("down")

    task, duplicate = ledger.claim(["a"], lambda: asyncio.ensure_future(ok()))
    assert not duplicate
    assert isinstance(task, asyncio.Task)
    await task
    await asyncio.sleep(0)
    assert ledger.claim(["a"], lambda: asyncio.ensure_future(ok())) == (PUBLISHED, True)

    failing, _ = ledger.claim(["b"], lambda: asyncio.ensure_future(broken()))
    assert isinstance(failing, asyncio.Task)
    with pytest.raises(RuntimeError):
        await failing
    await asyncio.sleep(0)
    retried, duplicate = ledger.claim(["b"], lambda: asyncio.ensure_future(ok()))
    assert not duplicate
    assert retried is not failing
    await asyncio.gather(retried)  # type: ignore[arg-type]


async def test_the_ledger_is_bounded() -> None:
    ledger = DeliveryLedger(3)

    async def ok() -> None:
        return None

    for name in "abcde":
        task, _ = ledger.claim([name], lambda: asyncio.ensure_future(ok()))
        await asyncio.gather(task)  # type: ignore[arg-type]
    assert len(ledger) == 3
    _, duplicate = ledger.claim(["a"], lambda: asyncio.ensure_future(ok()))
    assert not duplicate
