"""One serving process, built from a :class:`ServeConfig`: in this process, or in each worker.

``loopwright serve`` resolves the models once (:mod:`.sources`), then either builds the app in
its own process or passes the configuration as JSON in the environment variable
:data:`CONFIG_VARIABLE` to uvicorn's worker processes (spawned fresh interpreters), each of
which builds its own app from it (the factory is ``loopwright.cli.serve.app_from_environment``,
since resolving new names through the registry needs the client, a layer above serving).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .sources import ModelSource

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..features.protocol import Features
    from .prediction_log import PredictionLog
    from .repository import ModelRepository
    from .watcher import DeploymentWatcher

__all__ = ["CONFIG_VARIABLE", "ServeConfig", "build_app", "build_repository"]

CONFIG_VARIABLE = "LOOPWRIGHT_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    """What a serving process serves and how.

    Attributes:
        sources: the resolved models.
        max_batch_size: most rows merged into one predict call (1: no merging).
        max_batch_latency_ms: longest a batch stays open while requests keep arriving.
        log_root: where the prediction log is written (``None``: not logged).
        log_sample_rate: share of requests logged.
        registry: whether ``/v2/repository/models/<name>/load`` may resolve new names through
            the store or server the environment's settings name.
        trusted: whether models may unpickle or run packaged code (also those loaded later).
        deployment: the deployment served (its variants' models, routed by its policy and
            followed while serving); ``sources`` is then empty.
        refresh_seconds: how often the deployment and the aliases it follows are read.
        url: the address this server answers on, reported in the deployment's heartbeats.
        grpc_address: where OIP v2 over gRPC listens (``host:port``; ``None``: no gRPC).
        grpc_reuse_port: whether several worker processes listen on ``grpc_address``
            together (``SO_REUSEPORT``; the kernel spreads connections across them).
    """

    sources: tuple[ModelSource, ...]
    max_batch_size: int = 1
    max_batch_latency_ms: float = 5.0
    log_root: str | None = None
    log_sample_rate: float = 1.0
    registry: bool = False
    trusted: bool = False
    deployment: str | None = None
    refresh_seconds: float = 1.0
    url: str | None = None
    grpc_address: str | None = None
    grpc_reuse_port: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))  # every field, sources included, is plain data

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data = json.loads(text)
        sources = tuple(ModelSource(**s) for s in data.pop("sources"))
        return cls(sources=sources, **data)


def build_repository(
    config: ServeConfig,
    resolve: Callable[[str], ModelSource] | None = None,
    features: Callable[[], Features] | None = None,
) -> ModelRepository:
    """The repository of ``config``, every model loaded; ``resolve`` finds names to ``load``,
    ``features`` gives the feature store of models trained on a feature service."""
    from .repository import ModelRepository

    repository = ModelRepository(
        config.sources,
        max_batch_size=config.max_batch_size,
        max_latency_ms=config.max_batch_latency_ms,
        resolve=resolve,
        features=features,
    )
    repository.load_all()
    return repository


def build_app(
    config: ServeConfig,
    repository: ModelRepository,
    deployment: DeploymentWatcher | None = None,
) -> Starlette:
    """The app of one serving process, over ``repository`` (see :func:`build_repository`)
    and the loaded ``deployment`` of ``config.deployment``, if any."""
    from .app import create_app

    log = _open_log(config)
    app = create_app(repository, log=log, deployment=deployment)
    if config.grpc_address is not None:
        from .grpc_server import attach_grpc

        attach_grpc(app, repository, log, config.grpc_address, reuse_port=config.grpc_reuse_port)
    return app


def _open_log(config: ServeConfig) -> PredictionLog | None:
    if config.log_root is None:
        return None
    from .prediction_log import PredictionLog

    return PredictionLog(config.log_root, sample_rate=config.log_sample_rate)
