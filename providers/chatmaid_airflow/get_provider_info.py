"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

from chatmaid import DEFAULT_BASE_URL, __version__

_INTEGRATION = "Chatmaid"


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata (``airflow providers list``, connection form, triggers)."""
    return {
        # Airflow requires the canonical distribution name here.
        "package-name": "chatmaid-connectors",
        "name": "Chatmaid",
        "description": "Send WhatsApp messages through the Chatmaid API: hook, operators, "
        "sensor, trigger and notifier, idempotent across task retries.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://developers.chatmaid.net/docs",
                "logo": "/docs/integration-logos/chatmaid.svg",
                "how-to-guide": ["/docs/airflow.md"],
                "tags": ["service"],
            }
        ],
        "hooks": [_modules("hooks")],
        "operators": [_modules("operators")],
        "sensors": [_modules("sensors")],
        "triggers": [_modules("triggers")],
        "notifications": ["chatmaid_airflow.notifications.chatmaid.ChatmaidNotifier"],
        "extra-links": ["chatmaid_airflow.links.chatmaid.ChatmaidMessageLink"],
        "connection-types": [
            {
                "connection-type": "chatmaid",
                "hook-class-name": "chatmaid_airflow.hooks.chatmaid.ChatmaidHook",
                "hook-name": "Chatmaid",
                "conn-fields": _extra_fields(),
                "ui-field-behaviour": {
                    # The port stays visible: Airflow 3.3's Test posts port 0 for a
                    # connection without one (and refuses it), and a port kept hidden
                    # would outlive every edit of the Base URL.
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "port": "443 (https), or the sandbox's port",
                        "password": "sk_test_... or sk_live_...",
                    },
                },
            }
        ],
    }


def _extra_fields() -> dict[str, Any]:
    """The connection's extras, each with a description; the webhook secret only where the
    form masks it (Airflow 3.2's form shows extras in clear: set it in the Extra JSON)."""
    fields: dict[str, Any] = {
        "webhook_secret": {
            "label": "Webhook secret",
            "description": "The secret Chatmaid signs webhooks with (verify_webhook checks it).",
            "schema": {"type": ["string", "null"], "format": "password"},
        },
        "timeout": {
            "label": "Request timeout (s)",
            "description": "Seconds per HTTP request, above 0. Empty: 10.",
            "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
        },
        "max_retries": {
            "label": "Max retries",
            "description": "Retries after the first attempt on 5xx and connection errors. "
            "Empty: 4.",
            "schema": {"type": ["integer", "null"], "minimum": 0},
        },
        "requests_per_minute": {
            "label": "Requests per minute",
            "description": "Client-side limit shared by every client of the key in a "
            "process; 0 turns it off. Empty: 100.",
            "schema": {"type": ["number", "null"], "minimum": 0},
        },
        "default_from_phone": {
            "label": "Default sender",
            "description": "The sender when a task names none: a phone id or the E.164 "
            "number of one of the account's phones. Empty: the first connected phone.",
            "schema": {"type": ["string", "null"]},
        },
        "idempotency_namespace": {
            "label": "Idempotency namespace",
            "description": "Set one per deployment when two deployments share an account "
            "(e.g. staging), so their keys never collide.",
            "schema": {"type": ["string", "null"]},
        },
        "message_url": {
            "label": "Message link",
            "description": "Where the tasks' Chatmaid message link points, {message_id} "
            "replaced, e.g. https://dashboard.example.com/messages/{message_id}.",
            "schema": {"type": ["string", "null"], "pattern": "^$|^https?://.*\\{message_id\\}"},
        },
    }
    if _airflow_minor() < (3, 3):
        del fields["webhook_secret"]
    return fields


def _airflow_minor() -> tuple[int, int]:
    """Airflow's (major, minor), read from its distribution: Airflow calls this module
    while it starts, so importing ``airflow`` here would be circular."""
    found = re.match(r"(\d+)\.(\d+)", metadata.version("apache-airflow-core"))
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _modules(kind: str) -> dict[str, Any]:
    return {
        "integration-name": _INTEGRATION,
        "python-modules": [f"chatmaid_airflow.{kind}.chatmaid"],
    }
