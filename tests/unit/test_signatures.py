"""Public signatures are explicit keyword parameters, the same on both clients."""

from __future__ import annotations

import inspect

import pytest

from chatmaid import AsyncChatmaidClient, ChatmaidClient

PUBLIC = sorted(
    name
    for name, member in inspect.getmembers(ChatmaidClient, inspect.isfunction)
    if not name.startswith("_") and name not in {"close"}
)


def test_no_public_method_takes_var_keywords() -> None:
    for cls in (ChatmaidClient, AsyncChatmaidClient):
        for name in [*PUBLIC, "__init__"]:
            kinds = {p.kind for p in inspect.signature(getattr(cls, name)).parameters.values()}
            assert inspect.Parameter.VAR_KEYWORD not in kinds, f"{cls.__name__}.{name}"


@pytest.mark.parametrize("name", PUBLIC)
def test_the_async_client_mirrors_the_sync_one(name: str) -> None:
    sync = inspect.signature(getattr(ChatmaidClient, name))
    asynchronous = inspect.signature(getattr(AsyncChatmaidClient, name))
    assert list(sync.parameters) == list(asynchronous.parameters)
    for param in sync.parameters.values():
        other = asynchronous.parameters[param.name]
        assert (param.kind, param.default, param.annotation) == (
            other.kind,
            other.default,
            other.annotation,
        ), f"{name}({param.name})"


def test_constructors_differ_only_in_their_io_hooks() -> None:
    sync = inspect.signature(ChatmaidClient.__init__).parameters
    asynchronous = inspect.signature(AsyncChatmaidClient.__init__).parameters
    assert list(sync) == list(asynchronous)
    for name in sync:
        if name in {"transport", "sleep"}:
            continue
        assert (sync[name].kind, sync[name].default) == (
            asynchronous[name].kind,
            asynchronous[name].default,
        ), name


def test_send_message_shows_its_fields() -> None:
    params = inspect.signature(ChatmaidClient.send_message).parameters
    assert list(params) == ["self", "to", "content", "media_urls", "from_phone", "idempotency_key"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in params.items() if n != "self")
