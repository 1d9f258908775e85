"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

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
                "conn-fields": {
                    "webhook_secret": {
                        "label": "Webhook secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "timeout": {
                        "label": "Request timeout (s)",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "requests_per_minute": {
                        "label": "Requests per minute",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "default_from_phone": {
                        "label": "Default sender",
                        "schema": {"type": ["string", "null"]},
                    },
                    "idempotency_namespace": {
                        "label": "Idempotency namespace",
                        "schema": {"type": ["string", "null"]},
                    },
                    "message_url": {
                        "label": "Message link",
                        "schema": {
                            "type": ["string", "null"],
                            "pattern": "^$|^https?://.*\\{message_id\\}",
                        },
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "password": "sk_test_... or sk_live_...",
                        "timeout": "10",
                        "max_retries": "4",
                        "requests_per_minute": "100 (0: no client-side limit)",
                        "default_from_phone": "+15551234567 or a phone id",
                        "idempotency_namespace": "one per deployment sharing the account",
                        "message_url": "https://dashboard.example.com/messages/{message_id}",
                    },
                },
            }
        ],
    }


def _modules(kind: str) -> dict[str, Any]:
    return {
        "integration-name": _INTEGRATION,
        "python-modules": [f"chatmaid_airflow.{kind}.chatmaid"],
    }
