"""``Admin``: a blocking client for the sandbox's admin API (``/_sandbox/``).

>>> admin = Admin("http://127.0.0.1:8000")  # doctest: +SKIP
>>> key = admin.create_api_key(scopes=["messages:read"])["key"]  # doctest: +SKIP
>>> admin.inject_errors(0.5, status=503, path="/v1/messages")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote

import httpx


class SandboxAdminError(RuntimeError):
    """An admin request was refused; ``messages`` says why."""

    def __init__(self, status_code: int, messages: Sequence[str]) -> None:
        self.status_code = status_code
        self.messages = list(messages)
        super().__init__(f"sandbox admin HTTP {status_code}: {'; '.join(self.messages)}")


class _Unchanged:
    def __repr__(self) -> str:
        return "<unchanged>"


UNCHANGED = _Unchanged()


class Admin:
    """Set up and inspect a running sandbox. Records are the admin API's JSON dicts."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=f"{self.base_url}/_sandbox", timeout=timeout, trust_env=False
        )

    # -- stage ----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"}`` once the server answers."""
        return self._one("GET", "/health")

    def reset(self) -> None:
        """Back to the seed and the start options."""
        self._call("POST", "/reset")

    def settings(self) -> dict[str, Any]:
        """``rateLimit``, ``liveDelay``, ``timeScale``, ``webhookTimeout``, ``profile``..."""
        return self._one("GET", "/settings")

    def update_settings(
        self,
        *,
        rate_limit: int | None = None,
        live_delay: float | None = None,
        time_scale: float | None = None,
        webhook_timeout: float | None = None,
        profile: str | None = None,
        retry_after_header: bool | None = None,
        delivery_id_header: bool | None = None,
        keep_signature_on_retry: bool | None = None,
    ) -> dict[str, Any]:
        """Change the given settings until the next reset (``Settings`` says what each does)."""
        changes = {
            "rateLimit": rate_limit,
            "liveDelay": live_delay,
            "timeScale": time_scale,
            "webhookTimeout": webhook_timeout,
            "profile": profile,
            "retryAfterHeader": retry_after_header,
            "deliveryIdHeader": delivery_id_header,
            "keepSignatureOnRetry": keep_signature_on_retry,
        }
        body = {name: value for name, value in changes.items() if value is not None}
        return self._one("PATCH", "/settings", body)

    def api_keys(self) -> list[dict[str, Any]]:
        """Every API key (``id``, ``key``, ``environment``, ``scopes``, ...)."""
        return self._many("/api-keys")

    def create_api_key(
        self,
        *,
        environment: str = "test",
        scopes: Iterable[str] | None = None,
        expired: bool = False,
        rate_limit: int | None = None,
    ) -> dict[str, Any]:
        """A new key (all scopes unless told); ``rate_limit`` per minute, 0 for none."""
        body: dict[str, Any] = {"environment": environment, "expired": expired}
        if scopes is not None:
            body["scopes"] = list(scopes)
        if rate_limit is not None:
            body["rateLimit"] = rate_limit
        return self._one("POST", "/api-keys", body)

    def update_api_key(
        self,
        key_id: str,
        *,
        rate_limit: int | _Unchanged | None = UNCHANGED,
        expired: bool | None = None,
    ) -> dict[str, Any]:
        """Change a key's rate limit (``None``: the sandbox-wide one) or expiry."""
        body: dict[str, Any] = {}
        if not isinstance(rate_limit, _Unchanged):
            body["rateLimit"] = rate_limit
        if expired is not None:
            body["expired"] = expired
        return self._one("PATCH", f"/api-keys/{key_id}", body)

    def phones(self) -> list[dict[str, Any]]:
        """Every phone, as the API shows it."""
        return self._many("/phones")

    def create_phone(
        self, phone_number: str, *, display_name: str = "Sandbox Sender", connected: bool = True
    ) -> dict[str, Any]:
        """A new phone of the account."""
        body = {"phoneNumber": phone_number, "displayName": display_name, "connected": connected}
        return self._one("POST", "/phones", body)

    def set_phone_connected(self, phone: str, connected: bool) -> dict[str, Any]:
        """Connect or disconnect a phone (by ID or E.164); a change fires a webhook."""
        body = {"connected": connected}
        return self._one("PUT", f"/phones/{quote(phone, safe='')}/connection", body)

    def set_subscription(self, status: str) -> dict[str, Any]:
        """The account's subscription status; live keys need ``active``."""
        return self._one("PUT", "/subscription", {"status": status})

    # -- webhooks -------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        """The configured webhook endpoints."""
        return self._many("/webhooks")

    def add_webhook(
        self, url: str, secret: str, events: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """A new endpoint; every documented event unless ``events`` narrows it."""
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        return self._one("POST", "/webhooks", body)

    def remove_webhook(self, webhook_id: str) -> None:
        """Remove an endpoint (and its pending retries)."""
        self._call("DELETE", f"/webhooks/{webhook_id}")

    # -- behind the scenes ----------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """Every message of both environments, oldest first, with ``phoneId`` and
        ``idempotencyKey``."""
        return self._many("/messages")

    def message(self, message_id: str) -> dict[str, Any]:
        """One message with ``requestBody`` and its webhook ``deliveries`` (with attempts)."""
        return self._one("GET", f"/messages/{quote(message_id, safe='')}")

    def events(self, since: int = 0, epoch: str | None = None) -> dict[str, Any]:
        """What changed after ``since`` (``seq``, ``messages``, ``inbound``, ``deliveries``,
        ``stage``); everything (``full``) if ``epoch`` is not the current one."""
        params: dict[str, Any] = {"since": since}
        if epoch is not None:
            params["epoch"] = epoch
        return self._one("GET", "/events", params=params)

    def advance_message(self, message_id: str) -> dict[str, Any]:
        """Take a message's next lifecycle step now (``pending -> sent``, ...)."""
        return self._one("POST", f"/messages/{message_id}/advance")

    def inbound_messages(self) -> list[dict[str, Any]]:
        """Every simulated inbound message, oldest first."""
        return self._many("/inbound")

    def simulate_inbound(
        self,
        *,
        sender: str,
        to: str | None = None,
        content: str | None = "Hello from the sandbox",
        type: str = "text",
    ) -> dict[str, Any]:
        """A reply from ``sender`` to a phone of the account (``message.received`` if live)."""
        body = {"from": sender, "to": to, "content": content, "type": type}
        return self._one("POST", "/inbound", body)

    def simulate_outgoing(
        self,
        *,
        to: str,
        sender: str | None = None,
        content: str | None = "Sent from the phone",
        type: str = "text",
    ) -> dict[str, Any]:
        """A message typed on a phone of the account: ``message.outgoing`` (live profile)."""
        body = {"from": sender, "to": to, "content": content, "type": type}
        return self._one("POST", "/outgoing", body)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt, in order."""
        return self._many("/deliveries")

    def delivery(self, delivery_id: str) -> dict[str, Any]:
        """One webhook delivery: ``event``, ``body``, ``state`` and every attempt."""
        return self._one("GET", f"/deliveries/{quote(delivery_id, safe='')}")

    def redeliver(self, delivery_id: str) -> dict[str, Any]:
        """Deliver a delivery's body again to its endpoint; the new delivery."""
        return self._one("POST", f"/deliveries/{quote(delivery_id, safe='')}/redeliver")

    def wait_for_deliveries(
        self,
        count: int,
        *,
        event: str | None = None,
        succeeded: bool | None = None,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """Poll until at least ``count`` attempts match; return the matching ones."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                d
                for d in self.deliveries()
                if (event is None or d["event"] == event)
                and (succeeded is None or d["succeeded"] == succeeded)
            ]
            if len(found) >= count or time.monotonic() >= deadline:
                if len(found) < count:
                    raise TimeoutError(
                        f"{len(found)} of {count} webhook attempts after {timeout:g}s: {found}"
                    )
                return found
            time.sleep(0.02)

    def requests(self) -> dict[str, Any]:
        """``/v1`` requests answered: ``total``, ``byStatus``, ``byEndpoint``."""
        return self._one("GET", "/requests")

    # -- faults ---------------------------------------------------------------------

    def faults(self) -> list[dict[str, Any]]:
        """The active faults."""
        return self._many("/faults")

    def add_fault(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        seconds: float | None = None,
        fraction: float | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        count: int | None = None,
    ) -> dict[str, Any]:
        """A fault of ``kind`` (latency, error, drop, rate_limit) on ``method`` ``path*``."""
        fields = {
            "kind": kind,
            "method": method,
            "path": path,
            "seconds": seconds,
            "fraction": fraction,
            "status": status,
            "retryAfter": retry_after,
            "count": count,
        }
        body = {name: value for name, value in fields.items() if value is not None}
        return self._one("POST", "/faults", body)

    def inject_latency(self, seconds: float, **scope: Any) -> dict[str, Any]:
        """Delay matching requests by ``seconds``."""
        return self.add_fault("latency", seconds=seconds, **scope)

    def inject_errors(self, fraction: float, status: int = 503, **scope: Any) -> dict[str, Any]:
        """Answer ``status`` (5xx) to a ``fraction`` of matching requests, unprocessed."""
        return self.add_fault("error", fraction=fraction, status=status, **scope)

    def drop_connections(self, fraction: float = 1.0, **scope: Any) -> dict[str, Any]:
        """Process matching requests, then cut the connection mid-answer."""
        return self.add_fault("drop", fraction=fraction, **scope)

    def force_rate_limit(
        self, seconds: float, retry_after: int | None = None, **scope: Any
    ) -> dict[str, Any]:
        """Answer 429 to matching requests for ``seconds`` from now."""
        return self.add_fault("rate_limit", seconds=seconds, retry_after=retry_after, **scope)

    def clear_faults(self) -> None:
        """Deactivate every fault."""
        self._call("DELETE", "/faults")

    def remove_fault(self, fault_id: str) -> None:
        """Deactivate one fault."""
        self._call("DELETE", f"/faults/{fault_id}")

    # -- plumbing -------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        payload = response.json()
        if not response.is_success:
            raise SandboxAdminError(response.status_code, payload.get("message", []))
        return payload["data"]

    def _one(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call(method, path, body, params))

    def _many(self, path: str) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self._call("GET", path))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Admin({self.base_url!r})"
