"""What a :class:`~loopwright.client.Client` stands on: one backend providing every service.

A backend is chosen once, when the client is built (as httpx chooses a transport): ``Embedded``
works on the stores of this machine, :class:`loopwright.remote.Remote` talks to a server. Both
provide the services through the protocols of each capability, so the client and everything
above it (``ActiveRun``, ``load_model``, the CLI) have one code path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .config import Settings
    from .data.protocol import Datasets
    from .evaluation.protocol import Evaluation
    from .features.protocol import Features
    from .gateway.protocol import Gateway
    from .governance.protocol import Audit, Users
    from .loop.protocol import Gates, Loops, Schedules
    from .monitoring.protocol import Monitoring
    from .pipelines.protocol import Pipelines
    from .prompts.protocol import Prompts
    from .registry.protocol import Registry
    from .serving._prediction_protocol import Predictions
    from .serving.protocol import Deployments
    from .store.home import Store
    from .tracing.protocol import Tracing
    from .tracking.protocol import Tracking

__all__ = ["Backend", "Embedded"]


class Backend(Protocol):
    """The services of one Loopwright installation, and how to release them."""

    @property
    def store(self) -> Store:
        """The local stores (a server's backend raises ``NotOnRemote``: the server holds them)."""
        ...

    @property
    def tracking(self) -> Tracking: ...

    @property
    def datasets(self) -> Datasets: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def deployments(self) -> Deployments: ...

    @property
    def prediction_log(self) -> Predictions: ...

    @property
    def monitoring(self) -> Monitoring: ...

    @property
    def pipelines(self) -> Pipelines: ...

    @property
    def schedules(self) -> Schedules: ...

    @property
    def gates(self) -> Gates: ...

    @property
    def loops(self) -> Loops: ...

    @property
    def features(self) -> Features: ...

    @property
    def tracing(self) -> Tracing: ...

    @property
    def gateway(self) -> Gateway: ...

    @property
    def prompts(self) -> Prompts: ...

    @property
    def users(self) -> Users: ...

    @property
    def audit(self) -> Audit: ...

    @property
    def evaluation(self) -> Evaluation: ...

    def close(self) -> None:
        """Write buffered metrics, stop background threads, release connections."""
        ...


class Embedded:
    """The services on the metadata database and blob store named by ``settings``."""

    def __init__(self, settings: Settings) -> None:
        from .store.home import open_store

        self._store = open_store(settings)
        self._tracking: Tracking | None = None
        self._datasets: Datasets | None = None
        self._registry: Registry | None = None
        self._users: Users | None = None
        self._deployments: Deployments | None = None
        self._prediction_log: Predictions | None = None
        self._monitoring: Monitoring | None = None
        self._pipelines: Pipelines | None = None
        self._schedules: Schedules | None = None
        self._gates: Gates | None = None
        self._loops: Loops | None = None
        self._settings = settings
        self._audit: Audit | None = None
        self._features: Features | None = None
        self._prompts: Prompts | None = None
        self._evaluation: Evaluation | None = None
        self._tracing: Tracing | None = None
        self._gateway: Gateway | None = None

    @property
    def store(self) -> Store:
        return self._store

    @property
    def tracking(self) -> Tracking:
        if self._tracking is None:
            from .tracking.service import TrackingService

            self._tracking = TrackingService(self._store)
        return self._tracking

    @property
    def datasets(self) -> Datasets:
        if self._datasets is None:
            from .data.service import DatasetService

            self._datasets = DatasetService(self._store)
        return self._datasets

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from .registry.service import RegistryService

            self._registry = RegistryService(self._store)
        return self._registry

    @property
    def deployments(self) -> Deployments:
        if self._deployments is None:
            from .serving.deployments import DeploymentService

            self._deployments = DeploymentService(self._store)
        return self._deployments

    @property
    def prediction_log(self) -> Predictions:
        if self._prediction_log is None:
            from .serving.prediction_log import log_location
            from .serving.predictions import PredictionService

            self._prediction_log = PredictionService(log_location(self._settings))
        return self._prediction_log

    @property
    def monitoring(self) -> Monitoring:
        if self._monitoring is None:
            from .monitoring.service import MonitoringService

            self._monitoring = MonitoringService(self._store, self.prediction_log)
        return self._monitoring

    @property
    def pipelines(self) -> Pipelines:
        if self._pipelines is None:
            from .pipelines.service import PipelineService

            # The client's tracking service: a step's end flushes the metrics the step logged.
            self._pipelines = PipelineService(self._store, tracking=self.tracking)
        return self._pipelines

    @property
    def schedules(self) -> Schedules:
        if self._schedules is None:
            from .loop.schedules import ScheduleService

            self._schedules = ScheduleService(self._store)
        return self._schedules

    @property
    def gates(self) -> Gates:
        if self._gates is None:
            from .loop._gate_records import GateService

            self._gates = GateService(self._store)
        return self._gates

    @property
    def loops(self) -> Loops:
        if self._loops is None:
            from .loop.service import LoopService

            self._loops = LoopService(self._store)
        return self._loops

    @property
    def features(self) -> Features:
        if self._features is None:
            from .features.service import FeatureStore

            self._features = FeatureStore(
                self._store,
                self._settings,
                datasets=self.datasets,
                tracking=self.tracking,
                predictions_factory=lambda: self.prediction_log,
                deployments=self.deployments,
                registry=self.registry,
            )
        return self._features

    @property
    def users(self) -> Users:
        if self._users is None:
            from .governance.users import UserService

            self._users = UserService(self._store)
        return self._users

    @property
    def audit(self) -> Audit:
        if self._audit is None:
            from .governance.audit import AuditLog

            self._audit = AuditLog(self._store)
        return self._audit

    @property
    def prompts(self) -> Prompts:
        if self._prompts is None:
            from .prompts.service import PromptService

            self._prompts = PromptService(self._store)
        return self._prompts

    @property
    def tracing(self) -> Tracing:
        if self._tracing is None:
            from .tracing.service import TracingService

            self._tracing = TracingService(self._store)
        return self._tracing

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            from .gateway.service import GatewayService

            self._gateway = GatewayService(self._store)
        return self._gateway

    @property
    def evaluation(self) -> Evaluation:
        if self._evaluation is None:
            from .evaluation.service import EvaluationService

            self._evaluation = EvaluationService(self._store, tracking=self.tracking)
        return self._evaluation

    def close(self) -> None:
        try:
            if self._evaluation is not None:
                self._evaluation.close()
            if self._features is not None:
                self._features.close()  # the online store's connections
            if self._tracking is not None:
                self._tracking.close()
            if self._datasets is not None:
                self._datasets.close()
        finally:
            self._store.close()

    def __repr__(self) -> str:
        return f"Embedded(db={self._store.db.url!r}, blobs={self._store.blobs.uri!r})"
