"""Error answers become typed exceptions that carry what a person needs, never the key."""

from __future__ import annotations

import httpx
import pytest

from chatmaid import (
    AuthenticationError,
    BadRequestError,
    ChatmaidAPIError,
    ChatmaidConfigurationError,
    ChatmaidError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)

from .conftest import TEST_KEY, Api, error


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
        (418, ChatmaidAPIError),
    ],
)
def test_each_status_maps_to_its_error(api: Api, status: int, expected: type[Exception]) -> None:
    api.respond(lambda _r: error(status, ["first problem", "second problem"], "/v1/messages/send"))
    with pytest.raises(expected) as caught:
        api.call("get_message", "msg_1", client=api.client(max_retries=0))
    exc = caught.value
    assert isinstance(exc, ChatmaidAPIError)
    assert exc.status_code == status
    assert exc.messages == ["first problem", "second problem"]
    assert exc.path == "/v1/messages/send"
    assert "first problem; second problem" in str(exc)


def test_validation_error_lists_every_server_problem(api: Api) -> None:
    problems = ["Phone number must be in E.164 format (e.g., +1987654321)", "to must be a string"]
    api.respond(lambda _r: error(400, problems))
    with pytest.raises(BadRequestError) as caught:
        api.call("get_message", "msg_1")
    assert caught.value.problems == problems


def test_non_json_error_body_still_maps(api: Api) -> None:
    api.respond(lambda _r: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ServerError) as caught:
        api.call("get_message", "msg_1", client=api.client(max_retries=0))
    assert caught.value.error == "Bad Gateway"
    assert caught.value.path == "/v1/messages/msg_1"


def test_a_single_string_message_is_kept_as_a_list(api: Api) -> None:
    api.respond(
        lambda _r: httpx.Response(
            404, json={"success": False, "error": "Not Found", "message": "Cannot GET /v1/nope"}
        )
    )
    with pytest.raises(NotFoundError) as caught:
        api.call("get_message", "msg_1")
    assert caught.value.messages == ["Cannot GET /v1/nope"]


def test_malformed_success_body_is_a_clear_error(api: Api) -> None:
    api.respond(lambda _r: httpx.Response(200, text="ok"))
    with pytest.raises(ServerError, match="not JSON"):
        api.call("get_message", "msg_1", client=api.client(max_retries=0))


def test_the_key_never_appears_in_errors_or_reprs(api: Api) -> None:
    api.respond(lambda _r: error(401, ["Invalid API key"]))
    client = api.client()
    with pytest.raises(ChatmaidError) as caught:
        api.call("get_account", client=client)
    for text in (str(caught.value), repr(caught.value), repr(client), repr(client.config)):
        assert TEST_KEY not in text
    assert "sk_test_…abcd" in repr(client)


@pytest.mark.parametrize("bad_key", ["pk_live_123456789", "sk_prod_abcdefgh", "sk_test_"])
def test_a_key_without_a_known_prefix_is_refused_at_construction(api: Api, bad_key: str) -> None:
    with pytest.raises(ChatmaidConfigurationError, match="sk_test_") as caught:
        api.client(api_key=bad_key)
    assert bad_key not in str(caught.value) or bad_key == "sk_test_"


def test_environment_is_inferred_from_the_key(api: Api) -> None:
    assert api.client().config.environment == "test"
    assert api.client(api_key="sk_live_0123456789abcdef").config.environment == "live"


def test_config_comes_from_the_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMAID_API_KEY", "sk_live_fromenv0123456789")
    monkeypatch.setenv("CHATMAID_BASE_URL", "http://127.0.0.1:9999/")
    client = api.client(api_key=None, base_url=None)
    assert client.config.base_url == "http://127.0.0.1:9999"
    assert client.config.environment == "live"


def test_missing_key_is_a_clear_error(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATMAID_API_KEY", raising=False)
    with pytest.raises(ChatmaidConfigurationError, match="CHATMAID_API_KEY"):
        api.client(api_key=None)
