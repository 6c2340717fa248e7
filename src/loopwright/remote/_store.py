"""``client.store`` of a remote client: the settings and the caller, but no database or blobs.

The server holds the stores. Code that reaches for ``client.store.db`` or ``.blobs`` on a remote
client gets an error saying so (also an ``AttributeError``, so ``hasattr`` answers False).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Settings
    from ._http import Http

__all__ = ["NotOnRemote", "RemoteStore"]


class NotOnRemote(ConfigError, AttributeError):
    """A local-store attribute asked of a client that talks to a server."""


class RemoteStore:
    """What a remote client knows of the stores: its settings and who the server takes it for.

    ``settings.home`` is the local folder of caches (loaded model packages).
    """

    def __init__(self, settings: Settings, http: Http) -> None:
        self.settings = settings
        self._http = http
        self._actor: str | None = None

    @property
    def actor(self) -> str:
        """The user the server binds this client's token to."""
        if self._actor is None:
            self._actor = str(self._http.get("/me")["user"])
        return self._actor

    def close(self) -> None:
        self._http.close()

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotOnRemote(
            f"client.store.{name} is not available: this client talks to the Loopwright server "
            f"at {self.settings.server_uri}, which holds the stores; use the client's methods"
        )
