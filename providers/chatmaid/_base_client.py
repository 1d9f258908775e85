"""What both clients share besides the flows: configuration and a key-safe repr."""

from __future__ import annotations

from ._config import ClientConfig
from ._operations import Operations
from .idempotency import scoped_idempotency_key


class BaseClient:
    """Holds the resolved configuration and the operations built on it."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._ops = Operations(config)

    def idempotency_key(self, *parts: object, prefix: str = "cm") -> str:
        """A deterministic key for the logical send ``parts``, scoped to this client.

        The key's environment (test or live) and the client's ``idempotency_namespace``
        are part of it, so two deployments on one account never share a key.

        >>> client.idempotency_key("daily_kpi", "alert", run_id, -1, prefix="af")  # doctest: +SKIP
        'af-3f1c...'
        """
        return scoped_idempotency_key(
            *parts,
            prefix=prefix,
            environment=self.config.environment,
            namespace=self.config.idempotency_namespace,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(api_key={self.config.masked_key!r}, "
            f"base_url={self.config.base_url!r}, environment={self.config.environment!r})"
        )
