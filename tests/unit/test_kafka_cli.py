"""Settings and the CLI: flags and environment, clear errors, no secrets shown."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from chatmaid_kafka.cli import EXIT_CONFIG, build_parser, main
from chatmaid_kafka.logs import JsonFormatter, SecretScrubber, configure_logging
from chatmaid_kafka.producer import default_linger_ms
from chatmaid_kafka.settings import BridgeSettings

KEY = "sk_live_cli0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHATMAID_API_KEY", "CHATMAID_BASE_URL", "CHATMAID_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("command", ["run", "consume", "receive", "schema"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"chatmaid-bridge {command}" in out


def test_help_lists_the_flags_each_command_uses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["consume", "--help"])
    consume = capsys.readouterr().out
    assert "--concurrency" in consume
    assert "--webhook-path" not in consume
    assert "CHATMAID_API_KEY" in consume
    assert "--api-key" not in consume  # secrets never on the command line
    with pytest.raises(SystemExit):
        main(["receive", "--help"])
    receive = capsys.readouterr().out
    assert "--webhook-tolerance" in receive
    assert "--concurrency" not in receive
    assert "CHATMAID_WEBHOOK_SECRET" in receive


def test_a_missing_secret_is_a_clear_configuration_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "CHATMAID_API_KEY is not set" in err
    assert "CHATMAID_WEBHOOK_SECRET is not set" in err


def test_invalid_values_name_the_flag_and_never_echo_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATMAID_API_KEY", "pk_notakey_SECRETVALUE123")
    assert main(["consume", "--concurrency", "0", "--default-from", "+1"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "--concurrency / CHATMAID_BRIDGE_CONCURRENCY" in err
    assert "--default-from" in err
    assert "CHATMAID_API_KEY" in err
    assert "not a Chatmaid key" in err
    assert "SECRETVALUE123" not in err


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMAID_BRIDGE_CONCURRENCY", "7")
    monkeypatch.setenv("CHATMAID_BRIDGE_GROUP_ID", "from-env")
    args = build_parser().parse_args(["consume", "--concurrency", "3", "--no-create-topics"])
    provided = {k: v for k, v in vars(args).items() if k != "command"}
    settings = BridgeSettings(**provided)
    assert settings.concurrency == 3
    assert settings.group_id == "from-env"
    assert settings.create_topics is False


def test_secrets_come_from_the_core_variables_and_stay_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATMAID_API_KEY", KEY)
    monkeypatch.setenv("CHATMAID_WEBHOOK_SECRET", "whsec_one, whsec_two")
    monkeypatch.setenv("CHATMAID_BASE_URL", "http://127.0.0.1:9")
    settings = BridgeSettings()
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == KEY
    assert settings.base_url == "http://127.0.0.1:9"
    assert settings.webhook_secrets() == ["whsec_one", "whsec_two"]
    shown = repr(settings) + str(settings) + json.dumps(settings.model_dump(mode="json"))
    assert KEY not in shown
    assert "whsec_one" not in shown
    assert settings.missing(("api", "receiver")) == []


def test_topics_must_differ_and_sasl_is_passed_through() -> None:
    with pytest.raises(ValueError, match="must differ"):
        BridgeSettings(results_topic="same", dlq_topic="same")
    settings = BridgeSettings(
        sasl_mechanism="PLAIN",
        sasl_username="bridge",
        sasl_password="hunter2",
        security_protocol="SASL_SSL",
        bootstrap_servers="a:9092,b:9092",
    )
    options = settings.kafka_options()
    assert options["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert options["sasl_plain_password"] == "hunter2"
    assert "hunter2" not in repr(settings)


def test_schema_command_prints_the_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Chatmaid notify event"
    assert main(["schema", "--results"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Chatmaid result record"


def test_logs_are_json_lines_with_secrets_scrubbed() -> None:
    scrub = SecretScrubber(["whsec_topsecret"])
    record = logging.LogRecord(
        "chatmaid_kafka.test",
        logging.WARNING,
        __file__,
        1,
        "key %s secret %s",
        (KEY, "whsec_topsecret"),
        None,
    )
    record.partition = 3
    line = json.loads(JsonFormatter(scrub).format(record))
    assert line["level"] == "WARNING"
    assert line["partition"] == 3
    assert KEY not in line["message"]
    assert "sk_live_…CRET" in line["message"]
    assert "whsec_topsecret" not in line["message"]


@pytest.mark.parametrize("secret", ['pa"ss\\word', "mot-de-passé-ü", "tab\tand\nnewline"])
def test_secrets_json_would_escape_are_scrubbed_too(secret: str) -> None:
    scrub = SecretScrubber([secret])
    record = logging.LogRecord(
        "chatmaid_kafka.test", logging.ERROR, __file__, 1, "failed with %s", (secret,), None
    )
    record.detail = {"password": secret, "attempts": [1, secret]}
    line = JsonFormatter(scrub).format(record)
    escaped = json.dumps(secret)[1:-1]
    assert secret not in line
    assert escaped not in line
    parsed = json.loads(line)
    assert parsed["message"] == "failed with ***"
    assert parsed["detail"] == {"password": "***", "attempts": [1, "***"]}


def test_configure_logging_installs_one_scrubbing_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    quieted = [logging.getLogger(name) for name in ("kafka", "httpx")]
    saved = root.handlers[:], root.level, [logger.level for logger in quieted]
    try:
        configure_logging("INFO", "text", ["whsec_hidden"])
        assert len(root.handlers) == 1
        logging.getLogger("chatmaid_kafka.test").info("using whsec_hidden now")
        logging.getLogger("httpx").info("a request")  # quietened below WARNING
        err = capsys.readouterr().err
        assert "using *** now" in err
        assert "a request" not in err
    finally:
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for logger, previous in zip(quieted, levels, strict=True):
            logger.setLevel(previous)


def test_the_user_docs_list_every_setting() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "kafka-bridge.md").read_text()
    for name, info in BridgeSettings.model_fields.items():
        assert f"`CHATMAID_BRIDGE_{name.upper()}`" in docs, name
        default = info.default
        if isinstance(default, int | str) and not isinstance(default, bool):
            row = next(
                line for line in docs.splitlines() if f"`CHATMAID_BRIDGE_{name.upper()}`" in line
            )
            assert f"`{default}`" in row, (name, default)


def test_the_producer_linger_is_a_bounded_setting_with_a_default_per_command() -> None:
    args = build_parser().parse_args(["consume", "--producer-linger-ms", "40"])
    provided = {k: v for k, v in vars(args).items() if k != "command"}
    assert BridgeSettings(**provided).producer_linger_ms == 40
    with pytest.raises(ValueError, match="producer_linger_ms"):
        BridgeSettings(producer_linger_ms=5000)
    assert BridgeSettings().producer_linger_ms is None
    assert default_linger_ms(consume=True, receive=False) == 25
    assert default_linger_ms(consume=True, receive=True) == 5
    assert default_linger_ms(consume=False, receive=True) == 0
