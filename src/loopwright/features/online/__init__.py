"""The online store: the newest feature values per entity, for lookups at inference.

SQLite (one file, the embedded default) or Redis (shared by several servers), behind
:class:`~loopwright.features.online.base.OnlineStore`; :func:`open_online_store` picks one from
the ``online_store`` setting.
"""

from __future__ import annotations

from .base import OnlineRow as OnlineRow
from .base import OnlineStore as OnlineStore
from .open import open_online_store as open_online_store

__all__ = ["OnlineRow", "OnlineStore", "open_online_store"]
