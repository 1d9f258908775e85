"""What a sandbox is started with, and the settings an admin may change while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pydantic.alias_generators import to_camel

#: The webhook events the API documents (Webhooks page), read from the docs, not the client.
WEBHOOK_EVENTS = frozenset(
    {"message.sent", "message.failed", "phone.connected", "phone.disconnected"}
)
#: The events only the ``live`` profile sends (the JS SDK's ``WebhookEventType``).
LIVE_WEBHOOK_EVENTS = frozenset(
    {"message.delivered", "message.read", "message.received", "message.outgoing"}
)
KNOWN_WEBHOOK_EVENTS = WEBHOOK_EVENTS | LIVE_WEBHOOK_EVENTS
#: ``docs``: exactly what the docs show; ``live``: plus the live API's known extras.
PROFILES = ("docs", "live")


@dataclass(frozen=True)
class Settings:
    """Tunables of a running sandbox; ``PATCH /_sandbox/settings`` replaces them.

    ``rate_limit`` is requests per minute per API key (0 turns limiting off),
    ``live_delay`` the seconds a live message stays ``pending`` (and, in the ``live``
    profile, each further step to ``delivered`` and ``read``), ``time_scale`` the
    factor applied to the webhook retry schedule (1 minute becomes ``60 * time_scale``
    seconds), ``webhook_timeout`` the seconds one delivery attempt may take.
    ``profile`` is ``docs`` or ``live``; ``retry_after_header`` adds a ``Retry-After``
    header to 429s, ``delivery_id_header`` an ``X-Chatmaid-Delivery`` header to
    webhooks (neither is documented); ``keep_signature_on_retry`` sends a retry with
    its first attempt's signature instead of signing it afresh.
    """

    rate_limit: int = 100
    live_delay: float = 2.0
    time_scale: float = 1.0
    webhook_timeout: float = 10.0
    profile: str = "docs"
    retry_after_header: bool = False
    delivery_id_header: bool = False
    keep_signature_on_retry: bool = False

    @property
    def live(self) -> bool:
        """True in the ``live`` profile."""
        return self.profile == "live"

    def to_admin(self) -> dict[str, Any]:
        """The admin view: the fields with camelCase names."""
        return {to_camel(f.name): getattr(self, f.name) for f in fields(self)}

    def __post_init__(self) -> None:
        problems = []
        if self.profile not in PROFILES:
            problems.append(f"profile must be one of {', '.join(PROFILES)} (got {self.profile!r})")
        if not isinstance(self.rate_limit, int) or self.rate_limit < 0:
            problems.append(f"rate_limit must be an integer >= 0 (got {self.rate_limit!r})")
        if self.live_delay < 0:
            problems.append(f"live_delay must be >= 0 seconds (got {self.live_delay!r})")
        if self.time_scale <= 0:
            problems.append(f"time_scale must be > 0 (got {self.time_scale!r})")
        if self.webhook_timeout <= 0:
            problems.append(f"webhook_timeout must be > 0 seconds (got {self.webhook_timeout!r})")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class WebhookConfig:
    """A webhook endpoint: where to post, the signing secret, and the events it wants."""

    url: str
    secret: str = field(repr=False)
    events: frozenset[str] = KNOWN_WEBHOOK_EVENTS

    def __post_init__(self) -> None:
        unknown = set(self.events) - KNOWN_WEBHOOK_EVENTS
        if unknown:
            raise ValueError(
                f"unknown webhook events {sorted(unknown)}; known: {sorted(KNOWN_WEBHOOK_EVENTS)}"
            )
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s)://..., got {self.url!r}")
        if not self.secret:
            raise ValueError("a webhook needs a non-empty signing secret")


@dataclass(frozen=True)
class SandboxOptions:
    """Everything a sandbox starts with; a reset returns to exactly this.

    The first eight fields are the initial ``Settings``; ``webhooks`` the endpoints
    configured at start; ``random_seed`` seeds the fault injector's coin flips, so a
    fraction of failures is the same sequence on every run.
    """

    rate_limit: int = 100
    live_delay: float = 2.0
    time_scale: float = 1.0
    webhook_timeout: float = 10.0
    profile: str = "docs"
    retry_after_header: bool = False
    delivery_id_header: bool = False
    keep_signature_on_retry: bool = False
    webhooks: tuple[WebhookConfig, ...] = ()
    random_seed: int = 0

    def __post_init__(self) -> None:
        self.settings()  # validates the tunables

    def to_cli_args(self) -> list[str]:
        """The ``chatmaid-sandbox serve`` flags that start a sandbox with these options."""
        args: list[str] = []
        for name in ("rate_limit", "live_delay", "time_scale", "webhook_timeout", "random_seed"):
            args += [f"--{name.replace('_', '-')}", str(getattr(self, name))]
        args += ["--profile", self.profile]
        for flag in ("retry_after_header", "delivery_id_header", "keep_signature_on_retry"):
            if getattr(self, flag):
                args.append(f"--{flag.replace('_', '-')}")
        if self.webhooks:
            first = self.webhooks[0]
            if any((w.secret, w.events) != (first.secret, first.events) for w in self.webhooks):
                raise ValueError("the CLI takes one secret and one event list for all webhooks")
            for webhook in self.webhooks:
                args += ["--webhook", webhook.url]
            args += [
                "--webhook-secret",
                first.secret,
                "--webhook-events",
                ",".join(sorted(first.events)),
            ]
        return args

    def settings(self) -> Settings:
        """The initial settings these options describe."""
        names = {f.name for f in fields(Settings)}
        values: dict[str, Any] = {name: getattr(self, name) for name in names}
        return Settings(**values)
