"""Settings and stores for one CLI invocation, built from the global options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..client import Client
    from ..config import Settings

__all__ = ["CliState", "state"]


@dataclass
class CliState:
    home: str | None = None
    db_uri: str | None = None
    blob_uri: str | None = None
    log_level: str | None = None
    user: str | None = None
    server: str | None = None
    token: str | None = None

    def settings(self) -> Settings:
        from .._logging import configure_logging
        from ..config import resolve_settings

        settings = resolve_settings(
            home=self.home,
            db_uri=self.db_uri,
            blob_uri=self.blob_uri,
            log_level=self.log_level,
            user=self.user,
            server_uri=self.server,
            token=self.token,
        )
        configure_logging(settings.log_level)
        return settings

    def local_settings(self, command: str) -> Settings:
        """Settings for a command that works on the stores themselves, never through a server."""
        from ..errors import ConfigError

        settings = self.settings()
        if not settings.is_embedded:
            raise ConfigError(
                f"`loopwright {command}` works on the stores directly, not through a server "
                f"({settings.server_uri}); run it where the server's store is, without --server "
                "or LOOPWRIGHT_SERVER_URI"
            )
        return settings

    def client(self) -> Client:
        from ..client import Client

        return Client(self.settings())


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj
