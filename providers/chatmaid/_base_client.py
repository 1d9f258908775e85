"""What both clients share besides the flows: configuration and a key-safe repr."""

from __future__ import annotations

from ._config import ClientConfig, ClientOptions, build_config
from ._operations import Operations


class BaseClient:
    """Resolves the configuration once and holds the operations built on it."""

    def __init__(self, api_key: str | None, options: ClientOptions) -> None:
        self.config: ClientConfig = build_config(api_key, options)
        self._ops = Operations(self.config)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(api_key={self.config.masked_key!r}, "
            f"base_url={self.config.base_url!r}, environment={self.config.environment!r})"
        )
