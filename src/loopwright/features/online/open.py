"""Opening the online store a setting names (``online_store``; default a SQLite file in home)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import InvalidInput
from .base import OnlineStore

if TYPE_CHECKING:
    from ...config import Settings

__all__ = ["open_online_store"]


def open_online_store(settings: Settings) -> OnlineStore:
    """The online store of ``settings.online_store``: None -> ``<home>/online.db``,
    ``sqlite:///path`` -> that file, ``redis://host:port/db`` -> that server (redis-py).

    Raises:
        InvalidInput: the URL is of another kind, or the store cannot be opened or reached.
    """
    uri = settings.online_store
    if uri is None:
        from .sqlite import SQLiteOnlineStore

        return SQLiteOnlineStore(settings.home / "online.db")
    if uri.startswith("sqlite:///") and len(uri) > len("sqlite:///"):
        from .sqlite import SQLiteOnlineStore

        return SQLiteOnlineStore(uri[len("sqlite:///") :])
    if uri.startswith(("redis://", "rediss://")):
        try:
            from .redis import RedisOnlineStore
        except ImportError as exc:  # pragma: no cover - redis-py is in the dev environment
            raise InvalidInput(
                f"online store {uri.split('@')[-1]!r} needs redis-py; "
                "pip install 'loopwright[redis]'"
            ) from exc
        return RedisOnlineStore(uri)
    raise InvalidInput(
        f"online_store {uri!r} is not an online store; use sqlite:///path/to/online.db or "
        "redis://host:port/db (or unset it for <home>/online.db)"
    )
