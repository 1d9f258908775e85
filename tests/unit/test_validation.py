"""Sends are checked before any request, and every problem is reported at once."""

from __future__ import annotations

import pytest

from chatmaid import ChatmaidValidationError, is_e164, send_problems

from .conftest import Api


@pytest.mark.parametrize(
    "number", ["+15557654321", "+15551234567", "+447911123456", "+14155551234"]
)
def test_documented_numbers_are_e164(number: str) -> None:
    assert is_e164(number)


@pytest.mark.parametrize(
    "number",
    ["15557654321", "+1 555 765 4321", "+0123456789", "+1555", "+15557654321999999", "", None],
)
def test_malformed_numbers_are_not_e164(number: str | None) -> None:
    assert not is_e164(number)


def test_every_problem_is_listed_at_once(api: Api) -> None:
    with pytest.raises(ChatmaidValidationError) as caught:
        api.call(
            "send_message",
            from_phone="p1",
            to="555-1234",
            content="x" * 4097,
            media_urls=["http://insecure.example.com/a.png", "ftp://x"],
            idempotency_key="k" * 65,
        )
    problems = caught.value.problems
    assert len(problems) == 5
    assert any("E.164" in p and "'555-1234'" in p for p in problems)
    assert any("4096" in p and "4097" in p for p in problems)
    assert any("mediaUrls[0]" in p for p in problems)
    assert any("mediaUrls[1]" in p for p in problems)
    assert any("64" in p and "65" in p for p in problems)
    assert api.requests == []


def test_content_or_media_is_required() -> None:
    problems = send_problems(to="+15557654321", content="", media_urls=[], idempotency_key=None)
    assert problems == ["content or mediaUrls is required: give text, media, or both"]


def test_content_at_the_limit_is_fine() -> None:
    assert (
        send_problems(
            to="+15557654321", content="x" * 4096, media_urls=None, idempotency_key="k" * 64
        )
        == []
    )


def test_a_missing_sender_is_reported(api: Api) -> None:
    with pytest.raises(ChatmaidValidationError, match="from_phone"):
        api.call("send_message", from_phone=" ", to="+15557654321", content="hi")
