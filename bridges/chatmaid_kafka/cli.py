"""``chatmaid-bridge``: run the Kafka bridge.

Commands: ``run`` (consumer and webhook receiver), ``consume``, ``receive``, ``replay``
(dead letters back to the notify topic), ``schema``.
Every setting is a flag and a ``CHATMAID_BRIDGE_*`` environment variable (flags win);
secrets come from the environment only. SIGTERM or SIGINT drains and exits 0.

Examples::

    CHATMAID_API_KEY=sk_test_... CHATMAID_WEBHOOK_SECRET=whsec_... chatmaid-bridge run
    chatmaid-bridge consume --bootstrap-servers kafka:9092 --concurrency 32
    chatmaid-bridge schema > notify-event.schema.json
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
import types
import typing
from collections.abc import Sequence
from typing import Any

from kafka.errors import KafkaError
from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo

from .events import notify_event_schema
from .logs import configure_logging
from .records import result_record_schema
from .replay import replay
from .service import Bridge, StartupError
from .settings import BridgeSettings
from .supervisor import supervise

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

_ALL = ("kafka", "api", "consumer", "receiver", "http", "logging")
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "run": (_ALL, "consume notify events and receive webhooks in one process"),
    "consume": (
        ("kafka", "api", "consumer", "http", "logging"),
        "consume notify events and send them (serves /healthz and /metrics)",
    ),
    "receive": (
        ("kafka", "receiver", "http", "logging"),
        "receive webhooks and publish their results (plus /healthz and /metrics)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every command's flags come from ``BridgeSettings``."""
    parser = argparse.ArgumentParser(
        prog="chatmaid-bridge",
        description="Kafka bridge for the Chatmaid WhatsApp API: notify events in, "
        "sends out, delivery results back on a topic.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (groups, summary) in COMMANDS.items():
        command = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=_secrets_epilog(groups),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_setting_flags(command, groups)
    replay = commands.add_parser(
        "replay",
        help="re-publish dead letters to the notify topic, with their idempotency keys",
        description="Re-publish dead letters to the notify topic with the idempotency "
        "key their sends used (a replay never sends a message twice). Prints a count.",
    )
    _add_setting_flags(replay, ("kafka", "logging"))
    replay.add_argument("--stage", action="append", default=[], dest="stages",
                        help="only dead letters of this stage (repeatable)")  # fmt: skip
    replay.add_argument("--error-class", action="append", default=[], dest="error_classes",
                        help="only dead letters of this error class, e.g. ServerError "
                        "(repeatable)")  # fmt: skip
    replay.add_argument("--dry-run", action="store_true",
                        help="count what would be replayed, publish nothing")  # fmt: skip
    schema = commands.add_parser("schema", help="print the JSON Schema of notify events")
    schema.add_argument(
        "--results", action="store_true", help="print the result records' schema instead"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``chatmaid-bridge``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        schema = result_record_schema() if args.results else notify_event_schema()
        print(json.dumps(schema, indent=2))
        return EXIT_OK
    if args.command == "replay":
        return _replay(args)
    groups = COMMANDS[args.command][0]
    provided = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = BridgeSettings(**provided)
    except ValidationError as exc:
        return _config_error(_describe(exc))
    missing = settings.missing(groups)
    if missing:
        return _config_error([f"{name} is not set" for name in missing])
    if settings.processes > 1 and args.command != "consume":
        return _config_error(["--processes: only consume runs several processes "
                              "(run a separate receive for webhooks)"])  # fmt: skip
    configure_logging(settings.log_level, settings.log_format, _secrets(settings))
    if settings.processes > 1:
        return supervise(sys.argv[1:] if argv is None else argv, settings)
    return serve(settings, consume="api" in groups, receive="receiver" in groups)


def _replay(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k not in _REPLAY_OPTIONS}
    try:
        settings = BridgeSettings(**options)
    except ValidationError as exc:
        return _config_error(_describe(exc))
    configure_logging(settings.log_level, settings.log_format, _secrets(settings))
    try:
        report = replay(
            settings, stages=args.stages, error_classes=args.error_classes, dry_run=args.dry_run
        )
    except KafkaError as exc:
        print(f"chatmaid-bridge: replay failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    verb = "would replay" if args.dry_run else "replayed"
    stages = ", ".join(f"{n} {stage}" for stage, n in sorted(report.by_stage.items()))
    print(
        f"{verb} {report.replayed} of {report.read} dead letters from {settings.dlq_topic} "
        f"to {settings.notify_topic}{f' ({stages})' if stages else ''}; "
        f"{report.skipped} left out by the filters"
    )
    return EXIT_OK


_REPLAY_OPTIONS = {"command", "stages", "error_classes", "dry_run"}

SWITCH_INTERVAL = 0.0005
#: Allocations between two young garbage collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def serve(settings: BridgeSettings, *, consume: bool, receive: bool) -> int:
    """Run a bridge until SIGTERM/SIGINT (exit 0) or a fatal failure (exit 1)."""
    # Poll, send, producer and HTTP threads hand work to each other; the default 5 ms
    # GIL switch interval would add up to 5 ms to each hop of a webhook's answer.
    sys.setswitchinterval(SWITCH_INTERVAL)
    # At 700 the objects of the webhooks in flight (alive a few milliseconds) reach the
    # oldest generation, whose full collections then ran every second at load, 40-140 ms
    # each over every object of start-up: the receiver's p99. Nearly all of them die
    # young, by reference counting, long before 50,000 allocations.
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bridge = Bridge(settings, consume=consume, receive=receive)
    try:
        bridge.start()
    except (StartupError, KafkaError, OSError, RuntimeError) as exc:
        print(f"chatmaid-bridge: cannot start: {exc}", file=sys.stderr)
        bridge.stop()
        return EXIT_FAILED
    try:
        while not stop.wait(0.5):
            if bridge.failed.is_set() or not all(bridge.alive().values()):
                break
    finally:
        bridge.stop()
    if bridge.fatal is not None or not stop.is_set():
        print(f"chatmaid-bridge: stopped on a failure: {bridge.fatal}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _add_setting_flags(parser: argparse.ArgumentParser, groups: tuple[str, ...]) -> None:
    sections = {group: parser.add_argument_group(f"{group} settings") for group in groups}
    for name, info in BridgeSettings.model_fields.items():
        group = _group_of(info)
        if group not in sections or _is_secret(info):
            continue
        kind, choices = _flag_type(info.annotation)
        help_text = f"{info.description} (env {_env_name(name, info)}; default: {info.default})"
        options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = kind
            options["metavar"] = name.upper()
            if choices:
                options["choices"] = choices
                options["metavar"] = "{" + ",".join(map(str, choices)) + "}"
        sections[group].add_argument("--" + name.replace("_", "-"), **options)


def _flag_type(annotation: Any) -> tuple[type, list[Any]]:
    """The Python type of a flag (``Optional`` unwrapped) and its choices if a Literal."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return type(args[0]), list(args)
    if origin in (typing.Union, types.UnionType):
        return _flag_type(args[0])
    return annotation, []


def _group_of(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    return str(extra.get("group")) if isinstance(extra, dict) else ""


def _is_secret(info: FieldInfo) -> bool:
    return SecretStr in (info.annotation, *typing.get_args(info.annotation))


def _env_name(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return " or ".join(str(choice) for choice in choices)
    return f"CHATMAID_BRIDGE_{name.upper()}"


def _secrets_epilog(groups: tuple[str, ...]) -> str:
    lines = ["secrets (environment only):"]
    for name, info in BridgeSettings.model_fields.items():
        if _is_secret(info) and _group_of(info) in groups:
            lines.append(f"  {_env_name(name, info)}: {info.description}")
    return "\n".join(lines)


def _describe(exc: ValidationError) -> list[str]:
    """Each problem as 'flag / ENV: message', never echoing the value (it may be a secret)."""
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        problems.append(_where(name) + error["msg"].removeprefix("Value error, "))
    return problems


def _where(name: str) -> str:
    info = BridgeSettings.model_fields.get(name)
    if info is None:
        return ""
    env = _env_name(name, info)
    return f"{env}: " if _is_secret(info) else f"--{name.replace('_', '-')} / {env}: "


def _config_error(problems: list[str]) -> int:
    print("chatmaid-bridge: invalid configuration:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _secrets(settings: BridgeSettings) -> list[str]:
    values = list(settings.webhook_secrets())
    for secret in (settings.api_key, settings.sasl_password):
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


if __name__ == "__main__":
    sys.exit(main())
