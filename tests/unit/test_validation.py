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


@pytest.mark.parametrize(
    "number",
    ["+15557654321\n", "+1555765432\u0661", "+\uff115557654321", " +15557654321", "+1555-7654321"],
)
def test_e164_is_ascii_digits_and_the_whole_string(number: str) -> None:
    assert not is_e164(number)
    assert not is_e164(number, strict=True)


def test_the_docs_example_number_passes_by_default_and_strict_mode_is_opt_in() -> None:
    assert is_e164("+1987654321")
    assert not is_e164("+1987654321", strict=True)  # 9 digits after +1: not possible
    assert is_e164("+15557654321", strict=True)


def test_strict_numbers_is_a_client_option(api: Api) -> None:
    api.call("send_message", from_phone="p1", to="+1987654321", content="Hello")
    with pytest.raises(ChatmaidValidationError, match=r"E\.164"):
        api.call(
            "send_message",
            client=api.client(strict_numbers=True),
            from_phone="p1",
            to="+1987654321",
            content="Hello",
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.com/a.png",
        "https://user:pw@cdn.example.com/a.png",
        "https://user@cdn.example.com/a.png",
        "https://localhost/a.png",
        "https://app.localhost/a.png",
        "https://127.0.0.1/a.png",
        "https://[::1]/a.png",
        "https://10.0.0.7/a.png",
        "https://192.168.1.10/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://intranet/a.png",
        "https://cdn.example.com:99999/a.png",
        "https://cdn.exa mple.com/a.png",
        "https://",
    ],
)
def test_media_urls_the_api_could_never_fetch_are_refused(url: str) -> None:
    problems = send_problems(
        to="+15557654321", content=None, media_urls=[url], idempotency_key=None
    )
    assert problems == [f"mediaUrls[0] must be a public HTTPS URL; got {url!r}"]


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/a.png",
        "https://8.8.8.8/x.jpg",
        "https://a.b.example.org:8443/p?q=1",
    ],
)
def test_public_https_media_urls_pass(url: str) -> None:
    assert (
        send_problems(to="+15557654321", content=None, media_urls=[url], idempotency_key=None) == []
    )


def test_content_length_is_one_constant_counted_in_code_points() -> None:
    from chatmaid._validation import MAX_CONTENT_LENGTH

    at_limit = "🙂" * MAX_CONTENT_LENGTH  # 2 UTF-16 units each: see docs/core.md
    assert (
        send_problems(to="+15557654321", content=at_limit, media_urls=None, idempotency_key=None)
        == []
    )
