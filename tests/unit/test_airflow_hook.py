"""ChatmaidHook and the provider metadata: connection parsing, the client pool, the form."""

from __future__ import annotations

import asyncio
import importlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import Connection

from chatmaid import (
    ChatmaidAPIError,
    ChatmaidClient,
    ChatmaidConfigurationError,
    ChatmaidError,
    DeliveryTimeoutError,
    IdempotencyConflictError,
    NoConnectedPhoneError,
    RateLimitedError,
)
from chatmaid_airflow.exceptions import ChatmaidFatalError, ChatmaidRetryableError, task_error
from chatmaid_airflow.get_provider_info import get_provider_info
from chatmaid_airflow.hooks import chatmaid as hook_module
from chatmaid_airflow.hooks.chatmaid import ChatmaidConnectionSettings, ChatmaidHook
from tests.unit.conftest import MESSAGE, envelope, error

KEY = "sk_test_unit0123456789abcd"
SECRET = "whsec_unit_secret_value"
PHONES = [
    {"id": "p_off", "phoneNumber": "+15551230000", "connectionStatus": "disconnected"},
    {"id": "p_on", "phoneNumber": "+15551234567", "connectionStatus": "connected"},
]


def settings(
    host: str | None = None, port: int | None = None, extra: Any = None, password: str = KEY
) -> ChatmaidConnectionSettings:
    conn = Connection(conn_id="cm", conn_type="chatmaid", host=host, port=port, password=password)
    return ChatmaidConnectionSettings.from_connection(conn, extra or {})


# -- provider metadata ----------------------------------------------------------------


def test_provider_info_validates_against_airflows_schema() -> None:
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    jsonschema.validate(get_provider_info(), json.loads(schema_path.read_text()))


def test_provider_info_names_the_distribution_and_importable_modules() -> None:
    info = get_provider_info()
    dist = metadata.distribution(info["package-name"])
    assert dist.metadata["Name"] == "chatmaid-connectors"
    modules = [m for kind in ("hooks", "operators", "sensors", "triggers") for m in info[kind]]
    for entry in modules:
        for module in entry["python-modules"]:
            importlib.import_module(module)
    (conn_type,) = info["connection-types"]
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(module), name)
    assert (hook.conn_type, hook.hook_name) == (conn_type["connection-type"], "Chatmaid")
    notifier_module, _, notifier = info["notifications"][0].rpartition(".")
    assert hasattr(importlib.import_module(notifier_module), notifier)


def test_airflow_reads_the_connection_form_from_the_provider_info() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager()  # type: ignore[no-untyped-call]
    behaviour = providers.field_behaviours["chatmaid"]
    assert behaviour["hidden_fields"] == ["schema", "login"]  # the port stays in sight
    assert behaviour["placeholders"]["port"] == "443 (https), or the sandbox's port"
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert behaviour["placeholders"]["host"] == "https://developers-api.chatmaid.net"
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    widgets = {k for k in providers.connection_form_widgets if k.startswith("extra__chatmaid__")}
    assert widgets == {f"extra__chatmaid__{name}" for name in fields}


def test_the_logo_and_the_how_to_guide_are_in_the_repository() -> None:
    (integration,) = get_provider_info()["integrations"]
    repo = Path(__file__).resolve().parents[2]
    for path in (integration["logo"], *integration["how-to-guide"]):
        assert (repo / path.lstrip("/")).is_file(), path


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (name, value)
        for name in ("timeout", "max_retries", "requests_per_minute")
        for value in (-1, 0, 0.5, 2, 100)
    ]
    + [
        ("message_url", "https://dash.example/m/{message_id}"),
        ("message_url", "https://dash.example/m/"),
        ("message_url", "ftp://dash.example/{message_id}"),
        ("message_url", ""),
    ],
)
def test_the_forms_schema_accepts_exactly_what_the_hook_accepts(name: str, value: Any) -> None:
    """The UI validates extras with the provider info's schema; the hook reads them."""
    schema = get_provider_info()["connection-types"][0]["conn-fields"][name]["schema"]
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        in_form = False
    else:
        in_form = True
    try:
        settings(extra={name: value})
    except ChatmaidConfigurationError:
        in_hook = False
    else:
        in_hook = True
    assert in_form == in_hook


# -- connection settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, None),
        ("", None, None),
        ("https://developers-api.chatmaid.net/", None, "https://developers-api.chatmaid.net"),
        ("http://127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", None, "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000", 8000, "http://127.0.0.1:8000"),
        ("https://api.example.com", 8443, "https://api.example.com:8443"),
        ("https://api.example.com/prefix", 8443, "https://api.example.com:8443/prefix"),
        ("https://api.example.com:443", None, "https://api.example.com"),
        (None, 443, "https://developers-api.chatmaid.net"),
        ("http://[::1]", 8000, "http://[::1]:8000"),
    ],
)
def test_base_url_from_host_and_port(host: str | None, port: int | None, expected: str) -> None:
    assert settings(host, port).base_url == expected


def test_two_different_ports_are_refused_not_one_picked() -> None:
    with pytest.raises(ChatmaidConfigurationError) as caught:
        settings("http://127.0.0.1:9000", 8000)
    assert str(caught.value) == (
        "the Base URL 'http://127.0.0.1:9000' says port 9000 and the Port field 8000: "
        "keep one of them"
    )


def test_every_extra_in_the_form_says_what_it_does() -> None:
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert all(field["description"] for field in fields.values())


def test_the_webhook_secret_is_in_the_form_only_where_the_form_masks_it() -> None:
    from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert ("webhook_secret" in fields) is AIRFLOW_V_3_3_PLUS
    if AIRFLOW_V_3_3_PLUS:
        assert fields["webhook_secret"]["schema"]["format"] == "password"


@pytest.mark.parametrize(
    ("host", "port", "shown"),
    [
        ("127.0.0.1:18200", None, "127.0.0.1:18200"),
        ("127.0.0.1", 18200, "127.0.0.1:18200"),
        ("developers-api.chatmaid.net", None, "developers-api.chatmaid.net"),
    ],
)
def test_a_host_without_scheme_is_refused_with_the_fix(
    host: str, port: int | None, shown: str
) -> None:
    with pytest.raises(ChatmaidConfigurationError) as caught:
        settings(host, port)
    assert str(caught.value).startswith(
        f"the Base URL (host) {shown!r} has no scheme: write https://{shown}, "
        f"or http://{shown} for a local sandbox"
    )


def test_extras_json_typed_uri_strings_and_prefixed_forms_all_parse() -> None:
    typed = settings(extra={"timeout": 5, "max_retries": 2, "requests_per_minute": 30})
    strings = settings(extra={"timeout": "5", "max_retries": "2", "requests_per_minute": "30"})
    prefixed = settings(
        extra={
            "extra__chatmaid__timeout": "5",
            "extra__chatmaid__max_retries": "2",
            "extra__chatmaid__requests_per_minute": "30",
        }
    )
    assert typed == strings == prefixed
    assert typed.client_options() == {"timeout": 5.0, "max_retries": 2, "requests_per_minute": 30.0}


def test_empty_extras_keep_the_core_defaults_and_zero_rate_turns_the_limiter_off() -> None:
    assert settings(extra={"timeout": "", "webhook_secret": ""}).client_options() == {}
    off = settings(extra={"requests_per_minute": 0}).client_options()
    assert off == {"requests_per_minute": None}
    assert ChatmaidClient(KEY, **off).config.bucket is None


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"timeout": "soon"}, "extra 'timeout' must be a number > 0 (got 'soon')"),
        ({"timeout": 0}, "extra 'timeout' must be a number > 0 (got 0)"),
        (
            {"message_url": "dashboard/{id}"},
            "extra 'message_url' must be an http(s) URL with {message_id} in it",
        ),
        ({"max_retries": 1.5}, "extra 'max_retries' must be a whole number >= 0 (got 1.5)"),
        ({"requests_per_minute": -1}, "extra 'requests_per_minute' must be a number >= 0"),
    ],
)
def test_bad_extras_fail_the_task_naming_the_connection_and_the_field(
    extra: dict[str, Any], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "chatmaid", "host": "http://h:1", "password": KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_CM", json.dumps(conn))
    with pytest.raises(ChatmaidFatalError) as caught:
        ChatmaidHook("cm").get_message("msg_1")
    assert str(caught.value).startswith(f"Chatmaid (connection 'cm', host h:1): {problem}")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "no API key: put sk_test_... or sk_live_... in the connection's password field"),
        ("   ", "no API key: put sk_test_... or sk_live_... in the connection's password field"),
        ("Bearer sk_test_abc123456789", "the API key (…89) is not a Chatmaid key"),
    ],
)
def test_a_connection_without_a_usable_key_says_where_the_key_goes(
    password: str, problem: str
) -> None:
    with pytest.raises(ChatmaidConfigurationError) as caught:
        settings(password=password)
    assert str(caught.value).startswith(problem)
    assert "CHATMAID_API_KEY" not in str(caught.value)
    assert "abc123456789" not in str(caught.value)


def test_secrets_stay_out_of_reprs() -> None:
    parsed = settings(extra={"webhook_secret": SECRET})
    assert parsed.webhook_secret == SECRET
    assert KEY not in repr(parsed)
    assert SECRET not in repr(parsed)


def test_uri_connection_with_scheme_in_host(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"chatmaid://http://:{KEY}@127.0.0.1:8000/?timeout=3&webhook_secret={SECRET}"
    monkeypatch.setenv("AIRFLOW_CONN_CM_URI", uri)
    hook = ChatmaidHook("cm_uri")
    assert hook.settings.base_url == "http://127.0.0.1:8000"
    assert hook.settings.timeout == 3.0
    assert hook.client.config.base_url == "http://127.0.0.1:8000"
    assert KEY not in repr(hook.client)


def test_async_settings_read_the_same_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "chatmaid", "host": "http://h:1", "password": KEY, "extra": {"timeout": 4}}
    monkeypatch.setenv("AIRFLOW_CONN_CM_JSON", json.dumps(conn))
    hook = ChatmaidHook("cm_json")
    assert asyncio.run(hook.aget_settings()) == hook.settings


# -- the blocking client ----------------------------------------------------------------


def hook_with(handler: Any) -> tuple[ChatmaidHook, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)  # type: ignore[no-any-return]

    hook = ChatmaidHook("unit")
    hook.__dict__["client"] = ChatmaidClient(
        KEY, base_url="http://api", transport=httpx.MockTransport(record), requests_per_minute=None
    )
    return hook, seen


def api(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v1/phone-numbers":
        return envelope(PHONES)
    if request.url.path == "/v1/account":
        return httpx.Response(401, json={"message": ["Invalid API key"], "error": "Unauthorized"})
    return envelope({**MESSAGE, **json.loads(request.content or b"{}")}, 201)


@pytest.mark.parametrize(
    ("from_phone", "default", "calls", "phone_id"),
    [
        (None, None, ["/v1/phone-numbers", "/v1/messages/send"], "p_on"),
        ("+15551234567", None, ["/v1/phone-numbers", "/v1/messages/send"], "p_on"),
        ("p_given", None, ["/v1/messages/send"], "p_given"),
        (None, "p_default", ["/v1/messages/send"], "p_default"),
        (None, "+15551234567", ["/v1/phone-numbers", "/v1/messages/send"], "p_on"),
        ("p_given", "p_default", ["/v1/messages/send"], "p_given"),
    ],
)
def test_send_takes_the_task_sender_else_the_connection_default(
    from_phone: str | None, default: str | None, calls: list[str], phone_id: str
) -> None:
    hook, seen = hook_with(api)
    hook.__dict__["settings"] = ChatmaidConnectionSettings(api_key=KEY, default_from_phone=default)
    hook.send_message(to="+15557654321", content="hi", from_phone=from_phone, idempotency_key="k1")
    assert [r.url.path for r in seen] == calls
    body = json.loads(seen[-1].content)
    assert body == {
        "fromPhoneId": phone_id,
        "to": "+15557654321",
        "content": "hi",
        "idempotencyKey": "k1",
    }


def test_the_message_url_extra_makes_each_messages_link() -> None:
    hook = ChatmaidHook("unit")
    hook.__dict__["settings"] = ChatmaidConnectionSettings(
        api_key=KEY, message_url="https://dash.example/m/{message_id}?from=airflow"
    )
    assert hook.message_url("msg_1") == "https://dash.example/m/msg_1?from=airflow"
    hook.__dict__["settings"] = ChatmaidConnectionSettings(api_key=KEY)
    assert hook.message_url("msg_1") is None


def test_connection_extras_reach_the_client() -> None:
    read = settings(
        extra={"default_from_phone": "+15551234567", "idempotency_namespace": "staging"}
    )
    assert read.default_from_phone == "+15551234567"
    client = ChatmaidClient(read.api_key, **read.client_options())
    assert client.config.idempotency_namespace == "staging"


def test_test_connection_reports_the_api_error_without_the_key() -> None:
    hook, _ = hook_with(api)
    ok, detail = hook.test_connection()
    assert not ok
    assert "401" in detail
    assert KEY not in detail


def test_verify_webhook_needs_the_secret_extra() -> None:
    hook, _ = hook_with(api)
    hook.__dict__["settings"] = ChatmaidConnectionSettings(api_key=KEY)
    with pytest.raises(ChatmaidConfigurationError, match="no webhook_secret extra"):
        hook.verify_webhook(b"{}", "t=1,v1=00")


def test_verify_webhook_checks_the_signature_with_the_connection_secret() -> None:
    from chatmaid import webhooks

    hook, _ = hook_with(api)
    hook.__dict__["settings"] = ChatmaidConnectionSettings(api_key=KEY, webhook_secret=SECRET)
    body = json.dumps(
        {
            "event": "message.sent",
            "timestamp": "2026-02-06T14:18:33.000Z",
            "data": {"messageId": "msg_1", "status": "sent"},
        }
    )
    event = hook.verify_webhook(body, webhooks.sign(body, SECRET))
    assert event.event == "message.sent"


# -- the async client pool --------------------------------------------------------------


def test_borrowers_on_one_loop_share_one_client_closed_by_the_last() -> None:
    pool = hook_module._AsyncClientPool()
    one = ChatmaidConnectionSettings(api_key=KEY, base_url="http://a")
    other = ChatmaidConnectionSettings(api_key=KEY, base_url="http://b")

    async def scenario() -> None:
        async with pool.borrow(one) as first, pool.borrow(one) as second:
            async with pool.borrow(other) as third:
                assert first is second
                assert third is not first
            assert not first.is_closed
        assert first.is_closed
        async with pool.borrow(one) as fresh:
            assert fresh is not first

    asyncio.run(scenario())


def test_each_event_loop_gets_its_own_client() -> None:
    pool = hook_module._AsyncClientPool()
    one = ChatmaidConnectionSettings(api_key=KEY)
    clients = []

    async def borrow() -> None:
        async with pool.borrow(one) as client:
            clients.append(client)
            await asyncio.sleep(0)

    asyncio.run(borrow())
    asyncio.run(borrow())
    assert clients[0] is not clients[1]


# -- errors: fail fast where a retry cannot help, and say where ---------------------------


@pytest.fixture
def hook_on(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A hook on the connection ``unit`` (host ``http://api.test:8080``) answered by
    ``handler``, without retries."""

    def on(handler: Any) -> ChatmaidHook:
        conn = {"conn_type": "chatmaid", "host": "http://api.test:8080", "password": KEY}
        monkeypatch.setenv("AIRFLOW_CONN_UNIT", json.dumps(conn))

        def client(api_key: str, **options: Any) -> ChatmaidClient:
            transport = httpx.MockTransport(handler)
            return ChatmaidClient(api_key, **{**options, "max_retries": 0}, transport=transport)

        monkeypatch.setattr(hook_module, "ChatmaidClient", client)
        return ChatmaidHook("unit")

    return on


@pytest.mark.parametrize(
    ("status", "kind", "hint"),
    [
        (400, ChatmaidFatalError, "; a retry would be refused the same way"),
        (401, ChatmaidFatalError, "; check the API key in the connection's password field"),
        (
            403,
            ChatmaidFatalError,
            "; use a key with the scope this call needs, and check the account's subscription",
        ),
        (
            404,
            ChatmaidFatalError,
            "; check the message id, or the sender (from_phone, default_from_phone)",
        ),
        (409, ChatmaidFatalError, "; a retry would be refused the same way"),
        (500, ChatmaidRetryableError, ""),
        (503, ChatmaidRetryableError, ""),
    ],
)
def test_api_errors_fail_fast_or_stay_retryable_naming_the_connection_and_host(
    hook_on: Any, status: int, kind: type[Exception], hint: str
) -> None:
    hook = hook_on(lambda request: error(status, ["the server's reason"], request.url.path))
    with pytest.raises(ChatmaidError) as caught:
        hook.get_message("msg_1")
    assert type(caught.value) is kind
    assert str(caught.value).startswith(
        f"Chatmaid (connection 'unit', host api.test:8080): HTTP {status} "
    )
    assert str(caught.value).endswith(f"on /v1/messages/msg_1: the server's reason{hint}")
    assert KEY not in str(caught.value)
    assert isinstance(caught.value.__cause__, ChatmaidAPIError)
    assert caught.value.__cause__.status_code == status


def test_an_unreachable_api_stays_retryable_and_says_check_the_base_url(hook_on: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(ChatmaidRetryableError) as caught:
        hook_on(refuse).send_message(to="+15557654321", content="hi", from_phone="p_on")
    assert not isinstance(caught.value, AirflowFailException)
    assert str(caught.value) == (
        "Chatmaid (connection 'unit', host api.test:8080): ConnectError: [Errno 111] "
        "Connection refused on /v1/messages/send; check the connection's Base URL if this "
        "persists"
    )


def test_bad_input_and_idempotency_conflicts_fail_fast(hook_on: Any) -> None:
    other = {**MESSAGE, "to": "+15550000000"}
    hook = hook_on(lambda request: envelope(other, 201))
    with pytest.raises(ChatmaidFatalError, match=r"invalid .*E\.164"):
        hook.send_message(to="5557654321", content="hi", from_phone="p_on")
    with pytest.raises(ChatmaidFatalError, match="idempotency key 'k1' already belongs") as caught:
        hook.send_message(to="+15557654321", content="hi", from_phone="p_on", idempotency_key="k1")
    assert isinstance(caught.value.__cause__, IdempotencyConflictError)


def test_a_missing_connection_fails_fast_saying_how_to_add_it() -> None:
    with pytest.raises(ChatmaidFatalError) as caught:
        ChatmaidHook("nowhere").get_message("msg_1")
    assert str(caught.value) == (
        "Chatmaid connection 'nowhere' is not defined: add it under Admin > Connections "
        "(type Chatmaid), or set AIRFLOW_CONN_NOWHERE"
    )


def test_the_async_path_fails_fast_too(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "chatmaid", "host": "127.0.0.1:18200", "password": KEY}
    monkeypatch.setenv("AIRFLOW_CONN_UNIT", json.dumps(conn))

    async def borrow() -> None:
        async with ChatmaidHook("unit").async_client():
            raise AssertionError("a host without a scheme was accepted")

    with pytest.raises(ChatmaidFatalError, match=r"^Chatmaid \(connection 'unit', host 127"):
        asyncio.run(borrow())


def test_test_connection_names_the_host_not_the_temporary_connection(hook_on: Any) -> None:
    ok, detail = hook_on(lambda r: error(401, ["Invalid API key"], r.url.path)).test_connection()
    assert not ok
    assert detail == (
        "Chatmaid (host api.test:8080): HTTP 401 Unauthorized on /v1/account: Invalid API key; "
        "check the API key in the connection's password field"
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (RateLimitedError(429, "Too Many Requests", path="/v1/x"), ChatmaidRetryableError),
        (DeliveryTimeoutError("msg_1", "pending", 300), ChatmaidRetryableError),
        (NoConnectedPhoneError("no connected phone in this account"), ChatmaidFatalError),
        (ChatmaidConfigurationError("bad namespace"), ChatmaidFatalError),
    ],
)
def test_what_else_is_fatal_or_retryable(exc: ChatmaidError, kind: type[Exception]) -> None:
    assert type(task_error(exc, where="here")) is kind
