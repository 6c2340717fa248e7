"""What a remote client knows of the server's stores: its settings and who it is there.

The server holds the stores, so a remote client has no ``client.store``: asking for it raises
:class:`NotOnRemote` (also an ``AttributeError``, so ``hasattr`` answers False).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Settings
    from ._http import Http

__all__ = ["NotOnRemote", "RemoteSession"]


class NotOnRemote(ConfigError, AttributeError):
    """Something that needs the local stores, asked of a client that talks to a server."""


class RemoteSession:
    """A remote client's settings and the user the server binds its token to.

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
