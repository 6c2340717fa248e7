"""The remote backend of :class:`~loopwright.client.Client`: a Loopwright server over HTTP.

``lw.connect("http://host:8080", token=...)`` (or ``LOOPWRIGHT_SERVER_URI``) builds a client on
:class:`Remote`, whose services implement the same protocols as the embedded ones
(``loopwright.tracking.protocol`` ...), so ``ActiveRun``, ``Client`` and ``load_model`` work the
same; errors come back as the same :mod:`loopwright.errors` classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from ._http import Http
from ._store import NotOnRemote, RemoteSession
from .tracking import RemoteTracking

if TYPE_CHECKING:
    from ..config import Settings
    from .audit import RemoteAudit
    from .datasets import RemoteDatasets
    from .deployments import RemoteDeployments
    from .evaluation import RemoteEvaluation
    from .features import RemoteFeatures
    from .gates import RemoteGates
    from .gateway import RemoteGateway
    from .loops import RemoteLoops
    from .monitoring import RemoteMonitoring
    from .pipelines import RemotePipelines
    from .predictions import RemotePredictions
    from .prompts import RemotePrompts
    from .registry import RemoteRegistry
    from .schedules import RemoteSchedules
    from .tracing import RemoteTracing
    from .users import RemoteUsers

__all__ = ["NotOnRemote", "Remote"]


class Remote:
    """One session to a server and the services over it (all but tracking made on first use)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.server_uri is not None
        self.settings = settings
        self.http = Http(settings.server_uri, settings.token, user=settings.user)
        self._session = RemoteSession(settings, self.http)
        self._tracking = RemoteTracking(self.http)
        self._registry: RemoteRegistry | None = None
        self._datasets: RemoteDatasets | None = None
        self._users: RemoteUsers | None = None
        self._deployments: RemoteDeployments | None = None
        self._prediction_log: RemotePredictions | None = None
        self._monitoring: RemoteMonitoring | None = None
        self._pipelines: RemotePipelines | None = None
        self._prompts: RemotePrompts | None = None
        self._schedules: RemoteSchedules | None = None
        self._gates: RemoteGates | None = None
        self._loops: RemoteLoops | None = None
        self._audit: RemoteAudit | None = None
        self._features: RemoteFeatures | None = None
        self._evaluation: RemoteEvaluation | None = None
        self._tracing: RemoteTracing | None = None
        self._gateway: RemoteGateway | None = None

    @property
    def store(self) -> NoReturn:
        raise NotOnRemote(
            f"client.store is not available: this client talks to the Loopwright server at "
            f"{self.settings.server_uri}, which holds the stores; use the client's methods"
        )

    @property
    def tracking(self) -> RemoteTracking:
        return self._tracking

    @property
    def registry(self) -> RemoteRegistry:
        if self._registry is None:
            from .registry import RemoteRegistry

            self._registry = RemoteRegistry(self.http, self._session)
        return self._registry

    @property
    def datasets(self) -> RemoteDatasets:
        if self._datasets is None:
            from .datasets import RemoteDatasets

            self._datasets = RemoteDatasets(self.http, self._session)
        return self._datasets

    @property
    def deployments(self) -> RemoteDeployments:
        if self._deployments is None:
            from .deployments import RemoteDeployments

            self._deployments = RemoteDeployments(self.http)
        return self._deployments

    @property
    def prediction_log(self) -> RemotePredictions:
        if self._prediction_log is None:
            from .predictions import RemotePredictions

            self._prediction_log = RemotePredictions(self.http)
        return self._prediction_log

    @property
    def monitoring(self) -> RemoteMonitoring:
        if self._monitoring is None:
            from .monitoring import RemoteMonitoring

            self._monitoring = RemoteMonitoring(self.http)
        return self._monitoring

    @property
    def pipelines(self) -> RemotePipelines:
        if self._pipelines is None:
            from .pipelines import RemotePipelines

            self._pipelines = RemotePipelines(self.http)
        return self._pipelines

    @property
    def prompts(self) -> RemotePrompts:
        if self._prompts is None:
            from .prompts import RemotePrompts

            self._prompts = RemotePrompts(self.http)
        return self._prompts

    @property
    def schedules(self) -> RemoteSchedules:
        if self._schedules is None:
            from .schedules import RemoteSchedules

            self._schedules = RemoteSchedules(self.http)
        return self._schedules

    @property
    def loops(self) -> RemoteLoops:
        if self._loops is None:
            from .loops import RemoteLoops

            self._loops = RemoteLoops(self.http)
        return self._loops

    @property
    def gates(self) -> RemoteGates:
        if self._gates is None:
            from .gates import RemoteGates

            self._gates = RemoteGates(self.http)
        return self._gates

    @property
    def features(self) -> RemoteFeatures:
        if self._features is None:
            from .features import RemoteFeatures

            self._features = RemoteFeatures(
                self.http, datasets=lambda: self.datasets, tracking=self._tracking
            )
        return self._features

    @property
    def tracing(self) -> RemoteTracing:
        if self._tracing is None:
            from .tracing import RemoteTracing

            self._tracing = RemoteTracing(self.http)
        return self._tracing

    @property
    def gateway(self) -> RemoteGateway:
        if self._gateway is None:
            from .gateway import RemoteGateway

            self._gateway = RemoteGateway(self.http)
        return self._gateway

    @property
    def evaluation(self) -> RemoteEvaluation:
        if self._evaluation is None:
            from .evaluation import RemoteEvaluation

            self._evaluation = RemoteEvaluation(self.http, tracking=self._tracking)
        return self._evaluation

    @property
    def users(self) -> RemoteUsers:
        if self._users is None:
            from .users import RemoteUsers

            self._users = RemoteUsers(self.http, self._session)
        return self._users

    @property
    def audit(self) -> RemoteAudit:
        if self._audit is None:
            from .audit import RemoteAudit

            self._audit = RemoteAudit(self.http)
        return self._audit

    def close(self) -> None:
        try:
            self._tracking.close()
        finally:
            self.http.close()

    def __repr__(self) -> str:
        return f"Remote(server={self.settings.server_uri!r})"
