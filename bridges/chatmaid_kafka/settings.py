"""The bridge's configuration: one pydantic-settings model, from flags and the environment.

Every field is read from ``CHATMAID_BRIDGE_<NAME>`` (e.g. ``CHATMAID_BRIDGE_CONCURRENCY``);
the API key and base URL also from the core's ``CHATMAID_API_KEY`` / ``CHATMAID_BASE_URL``
and the webhook secret from ``CHATMAID_WEBHOOK_SECRET``. The CLI turns every non-secret
field into a flag (``--concurrency``); secrets come from the environment only, so they
never show in a process list.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatmaid import ChatmaidConfigurationError, environment_of, is_e164

#: An event type (``message.read``) or a prefix of types (``message.*``, ``*``).
_EVENT_PATTERN = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?|\*")


def _field(default: Any, description: str, group: str, **kwargs: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"group": group}, **kwargs)


class BridgeSettings(BaseSettings):
    """Validated bridge configuration. Secrets are ``SecretStr``: never in reprs or logs."""

    model_config = SettingsConfigDict(
        env_prefix="CHATMAID_BRIDGE_",
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    # -- Kafka ----------------------------------------------------------------------
    bootstrap_servers: str = _field(
        "127.0.0.1:9092", "Kafka bootstrap servers, comma separated", "kafka", min_length=1
    )
    notify_topic: str = _field("chatmaid.notify", "topic of notify events", "kafka")
    results_topic: str = _field("chatmaid.results", "topic of result records", "kafka")
    dlq_topic: str = _field("chatmaid.dlq", "dead-letter topic", "kafka")
    correlation_topic: str = _field(
        "chatmaid.correlation", "compacted topic: messageId -> eventId, metadata", "kafka"
    )
    create_topics: bool = _field(True, "create missing topics at start", "kafka")
    topic_partitions: int = _field(4, "partitions of topics the bridge creates", "kafka", ge=1)
    replication_factor: int = _field(1, "replication of topics the bridge creates", "kafka", ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _field(
        "PLAINTEXT", "Kafka security protocol", "kafka"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = _field(
        None, "SASL mechanism", "kafka"
    )
    sasl_username: str | None = _field(None, "SASL user name", "kafka")
    sasl_password: SecretStr | None = _field(
        None, "SASL password (environment only)", "kafka", exclude=True
    )
    ssl_cafile: str | None = _field(None, "CA file for SSL", "kafka")
    producer_linger_ms: int | None = _field(
        None,
        "Kafka linger.ms of the results producer: how long a batch waits for more "
        "records (default: 25 for consume, 5 for run, 0 for receive)",
        "kafka",
        ge=0,
        le=1000,
    )

    # -- Chatmaid API ---------------------------------------------------------------
    api_key: SecretStr | None = _field(
        None,
        "Chatmaid API key, sk_test_... or sk_live_... (environment only)",
        "api",
        validation_alias=AliasChoices("CHATMAID_BRIDGE_API_KEY", "CHATMAID_API_KEY"),
        exclude=True,
    )
    base_url: str | None = _field(
        None,
        "API base URL (default: the public host)",
        "api",
        validation_alias=AliasChoices("CHATMAID_BRIDGE_BASE_URL", "CHATMAID_BASE_URL"),
    )
    default_from: str | None = _field(
        None,
        "sender when an event names none: a phone ID or an E.164 number "
        "(default: the account's first connected phone)",
        "api",
    )
    requests_per_minute: float | None = _field(
        100.0, "client-side rate limit of the API key (0 turns it off)", "api", ge=0
    )
    rate_limit_scope: Literal["group", "process"] = _field(
        "group",
        "group: --requests-per-minute is the key's limit, shared by the consumer group's "
        "processes in proportion to their partitions (recomputed at every rebalance); "
        "process: each process takes all of it",
        "api",
    )
    rate_limit_burst: int | None = _field(
        None, "token bucket burst (default: a tenth of the per-minute rate)", "api", ge=1
    )
    request_timeout: float = _field(10.0, "seconds per API request", "api", gt=0)
    max_retries: int = _field(
        6,
        "retries of a 5xx or transport failure in one round of attempts (429s aside); "
        "after a round the event waits and is sent again, never dead-lettered",
        "api",
        ge=0,
    )
    send_deadline: float = _field(
        300.0, "seconds one round of attempts may take, waits included", "api", gt=0
    )
    probe_interval: float = _field(
        30.0,
        "seconds between probes while the API refuses the account's sends (403, "
        "no connected sender); every partition stays paused meanwhile",
        "api",
        gt=0,
    )
    idempotency_namespace: str | None = _field(
        None,
        "deployment namespace of derived idempotency keys (e.g. staging): set one per "
        "deployment that shares a Chatmaid account with another",
        "api",
    )

    # -- consumer -------------------------------------------------------------------
    group_id: str = _field("chatmaid-bridge", "consumer group", "consumer", min_length=1)
    group_instance_id: str | None = _field(
        None,
        "static group membership ID, unique per process: a restart within the session "
        "timeout takes its partitions back without a rebalance",
        "consumer",
        min_length=1,
    )
    partition_assignment: Literal["cooperative-sticky", "eager"] = _field(
        "cooperative-sticky",
        "rebalance protocol: cooperative-sticky moves only the partitions that change "
        "owner (KIP-429), eager revokes every partition at each rebalance; one group "
        "must use one",
        "consumer",
    )
    processes: int = _field(
        1,
        "consume: run this many consumer processes of the group (a core each), "
        "supervised; their HTTP ports are --port + i",
        "consumer",
        ge=1,
        le=64,
    )
    concurrency: int = _field(32, "sends in flight at once", "consumer", ge=1, le=10_000)
    max_pending_per_partition: int = _field(
        500, "events read but not finished per partition before it is paused", "consumer", ge=1
    )
    max_partition_fetch_bytes: int = _field(
        262_144, "bytes fetched per partition at a time (bounds each poll)", "consumer", ge=1024
    )
    max_poll_interval_ms: int = _field(
        300_000, "Kafka max.poll.interval.ms (the bridge polls far more often)", "consumer", ge=1
    )
    session_timeout_ms: int = _field(
        6_000,
        "Kafka session.timeout.ms: how soon a dead member's partitions move (heartbeats "
        "every third of it, on kafka-python's IO thread)",
        "consumer",
        ge=3000,
    )
    commit_interval: float = _field(
        0.5, "seconds between commits of the completed watermark", "consumer", ge=0
    )
    shutdown_timeout: float = _field(
        30.0, "seconds to drain in-flight sends at shutdown", "consumer", ge=0
    )
    exactly_once: bool = _field(
        False,
        "write outcome records and offsets in one Kafka transaction: a read_committed "
        "reader of the results sees each accepted record once",
        "consumer",
    )
    transactional_id: str | None = _field(
        None,
        "transactional ID with --exactly-once, unique per process and stable across its "
        "restarts (default: from --group-id and --group-instance-id, else random)",
        "consumer",
        min_length=1,
    )
    auto_offset_reset: Literal["earliest", "latest"] = _field(
        "earliest", "where a new group starts reading", "consumer"
    )

    # -- webhook receiver -----------------------------------------------------------
    webhook_secret: SecretStr | None = _field(
        None,
        "webhook signing secret; several comma separated while rotating (environment only)",
        "receiver",
        validation_alias=AliasChoices("CHATMAID_BRIDGE_WEBHOOK_SECRET", "CHATMAID_WEBHOOK_SECRET"),
        exclude=True,
    )
    webhook_path: str = _field("/webhooks/chatmaid", "path of the webhook endpoint", "receiver")
    webhook_tolerance: float = _field(
        300.0, "seconds a signature timestamp may be off (replay window)", "receiver", gt=0
    )
    max_body_bytes: int = _field(
        65_536, "largest webhook body accepted", "receiver", ge=256, le=10_485_760
    )
    publish_timeout: float = _field(
        5.0, "seconds to wait for Kafka's ack before answering 503", "receiver", gt=0
    )
    correlation_wait: float = _field(
        2.0, "seconds to wait for an unknown messageId's eventId", "receiver", ge=0
    )
    correlation_capacity: int = _field(
        100_000, "messageIds remembered for correlation", "receiver", ge=1
    )
    dedupe_capacity: int = _field(
        100_000, "webhook delivery keys remembered (two per delivery)", "receiver", ge=1
    )
    webhook_events: str | None = _field(
        None,
        "webhook event types to publish, comma separated; 'message.*' matches a prefix "
        "(default: every type). Others are verified, answered 200 and not published",
        "receiver",
    )

    # -- HTTP (webhooks, /healthz, /metrics) ----------------------------------------
    host: str = _field("127.0.0.1", "HTTP listen address", "http")
    port: int = _field(8080, "HTTP listen port (0: any free port)", "http", ge=0, le=65535)

    # -- logging --------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _field("INFO", "log level", "logging")
    log_format: Literal["json", "text"] = _field("json", "log format", "logging")

    @field_validator("api_key")
    @classmethod
    def _known_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                environment_of(value.get_secret_value().strip())
            except ChatmaidConfigurationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("default_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("+") and not is_e164(value):
            raise ValueError(f"{value!r} is neither a phone ID nor an E.164 number")
        return value

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or value in ("/healthz", "/metrics"):
            raise ValueError("must start with '/' and not be /healthz or /metrics")
        return value

    @field_validator("webhook_events")
    @classmethod
    def _event_patterns(cls, value: str | None) -> str | None:
        if value is None:
            return None
        patterns = [part.strip() for part in value.split(",")]
        if not all(_EVENT_PATTERN.fullmatch(p) for p in patterns):
            raise ValueError("must be event types (message.read) or prefixes (message.*)")
        return ",".join(patterns)

    @model_validator(mode="after")
    def _distinct_topics(self) -> BridgeSettings:
        topics = [self.notify_topic, self.results_topic, self.dlq_topic, self.correlation_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(f"notify, results, dlq and correlation topics must differ: {topics}")
        if (self.sasl_mechanism is None) != (self.sasl_username is None):
            raise ValueError("sasl_mechanism and sasl_username go together")
        return self

    def transactional_id_or_default(self) -> str:
        """The transactional ID: given, else stable with static membership, else random
        (a dead process's open transaction then ends by the broker's timeout, 10 s)."""
        if self.transactional_id is not None:
            return self.transactional_id
        member = self.group_instance_id or uuid.uuid4().hex[:12]
        return f"chatmaid-bridge-{self.group_id}-{member}"

    def webhook_secrets(self) -> list[str]:
        """The webhook secret(s) (several while one is being rotated)."""
        if self.webhook_secret is None:
            return []
        raw = self.webhook_secret.get_secret_value()
        return [part.strip() for part in raw.split(",") if part.strip()]

    def webhook_event_patterns(self) -> tuple[str, ...]:
        """The event types (or ``prefix.*``) to publish; empty: every type."""
        return tuple(self.webhook_events.split(",")) if self.webhook_events else ()

    def missing(self, groups: tuple[str, ...]) -> list[str]:
        """Required settings a command using ``groups`` lacks, as environment variables."""
        needed = []
        if "api" in groups and self.api_key is None:
            needed.append("CHATMAID_API_KEY")
        if "receiver" in groups and not self.webhook_secrets():
            needed.append("CHATMAID_WEBHOOK_SECRET")
        return needed

    def kafka_options(self) -> dict[str, Any]:
        """Connection options shared by every Kafka client of the bridge."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
            # kafka-python backs off up to 30 s between reconnects by default: after an
            # outage the bridge would sit idle that long with the broker back.
            "reconnect_backoff_max_ms": 1000,
        }
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile is not None:
            options["ssl_cafile"] = self.ssl_cafile
        return options
