"""API keys and scopes: who is calling (401), and may they (403).

The scope matrix is the Authentication page's "Endpoint to Scope Matrix"; live keys
also need an active subscription (Environments page).
"""

from __future__ import annotations

from dataclasses import dataclass

from .responses import ApiError
from .state import ApiKeyRecord, SandboxState, utcnow
from .wire import KEY_PREFIXES


@dataclass(frozen=True)
class ScopeRule:
    """The scopes an endpoint accepts: any of ``scopes``, or any scope with a prefix."""

    required: str
    also_accepted: frozenset[str] = frozenset()
    accepted_prefixes: tuple[str, ...] = ()

    def allows(self, scopes: frozenset[str]) -> bool:
        """True when one of ``scopes`` satisfies the rule."""
        if self.required in scopes or not self.also_accepted.isdisjoint(scopes):
            return True
        return any(s.startswith(self.accepted_prefixes) for s in scopes)

    @property
    def accepted(self) -> list[str]:
        """Every accepted scope, for messages and the OpenAPI document."""
        return [
            self.required,
            *sorted(self.also_accepted),
            *(p + "*" for p in self.accepted_prefixes),
        ]


SEND_MESSAGES = ScopeRule("messages:send", frozenset({"messages:write"}))
READ_MESSAGES = ScopeRule("messages:read")
READ_PHONES = ScopeRule(
    "phone_numbers:read", frozenset({"phone-numbers:read"}), accepted_prefixes=("messages:",)
)
READ_ACCOUNT = ScopeRule(
    "account:read", frozenset({"messages:read", "messages:send", "messages:write"})
)


def authenticate(header: str | None, state: SandboxState) -> ApiKeyRecord:
    """The key of an ``Authorization: Bearer <key>`` header; 401 for anything else."""
    if not header:
        raise ApiError(401, "Missing API key: send Authorization: Bearer sk_test_* or sk_live_*")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Malformed Authorization header: expected 'Bearer <API key>'")
    if not token.startswith(tuple(KEY_PREFIXES)):
        raise ApiError(401, "Invalid API key format: keys start with sk_test_ or sk_live_")
    key = state.keys.get(token)
    if key is None:
        raise ApiError(401, "Invalid API key")
    if key.expired(utcnow()):
        raise ApiError(401, "API key has expired")
    return key


def authorize(key: ApiKeyRecord, rule: ScopeRule, state: SandboxState) -> None:
    """403 unless the key has a scope the rule accepts (and, if live, a subscription)."""
    if not rule.allows(key.scopes):
        raise ApiError(
            403, f"API key does not include required scope: one of {', '.join(rule.accepted)}"
        )
    status = state.account.subscription_status
    if key.environment == "live" and status != "active":
        raise ApiError(
            403, f"Live API keys require an active subscription (subscription is {status})"
        )
