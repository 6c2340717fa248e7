"""The remote backend of :class:`~loopwright.client.Client`: a Loopwright server over HTTP.

``lw.connect("http://host:8080", token=...)`` (or ``LOOPWRIGHT_SERVER_URI``) builds a client whose
``tracking``, ``registry`` and ``datasets`` are the classes here. They have the methods and
signatures of the embedded services, so ``ActiveRun``, ``Client`` and ``load_model`` work the
same; errors come back as the same :mod:`loopwright.errors` classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._http import Http
from ._store import RemoteStore
from .tracking import RemoteTracking

if TYPE_CHECKING:
    from ..config import Settings
    from ..store.audit import AuditEvent, ChainReport
    from .datasets import RemoteDatasets
    from .registry import RemoteRegistry

__all__ = ["Remote"]


class Remote:
    """One session to a server and the services over it (registry and datasets on first use)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.server_uri is not None
        self.http = Http(settings.server_uri, settings.token, user=settings.user)
        self.store = RemoteStore(settings, self.http)
        self.tracking = RemoteTracking(self.http, self.store)
        self._registry: RemoteRegistry | None = None
        self._datasets: RemoteDatasets | None = None

    @property
    def registry(self) -> RemoteRegistry:
        if self._registry is None:
            from .registry import RemoteRegistry

            self._registry = RemoteRegistry(self.http, self.store)
        return self._registry

    @property
    def datasets(self) -> RemoteDatasets:
        if self._datasets is None:
            from .datasets import RemoteDatasets

            self._datasets = RemoteDatasets(self.http, self.store)
        return self._datasets

    def audit_events(
        self,
        *,
        subject_type: str | None = None,
        subject_id: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        from ._codec import audit_event

        found = self.http.get(
            "/audit/events",
            subject_type=subject_type,
            subject_id=subject_id,
            actor=actor,
            limit=limit,
        )
        return [audit_event(e) for e in found]

    def verify_audit(self) -> ChainReport:
        from ._codec import chain_report

        return chain_report(self.http.get("/audit/verify"))

    def close(self) -> None:
        try:
            self.tracking.close()
        finally:
            self.http.close()
