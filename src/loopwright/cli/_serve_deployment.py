"""``loopwright serve --deployment NAME``: a deployment's store side for the serving process.

Serving follows a deployment through a :class:`~loopwright.serving.watcher.DeploymentLookup`
and never imports the client; this module is that lookup on a :class:`~loopwright.client.Client`
(embedded or remote, as the settings say), one per serving process. The watcher calls it from
two threads of its own (the rounds and the heartbeats): the client is thread-safe, and it is
opened once under a lock.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import Client
    from ..config import Settings
    from ..serving.entities import Deployment
    from ..serving.repository import ModelRepository
    from ..serving.server import ServeConfig
    from ..serving.sources import ModelSource
    from ..serving.watcher import DeploymentWatcher

__all__ = ["HEARTBEAT_SECONDS", "ClientLookup", "load_deployment", "public_url"]

# Well inside the control plane's 30 s: an instance misses several beats before it is unlisted.
HEARTBEAT_SECONDS = 5.0


class ClientLookup:
    """Deployments, aliases and packages read through a client opened on first use.

    Args:
        settings: where the store or server is.
        url: this server's address, reported in heartbeats.
        trusted: whether the deployment's packages may unpickle or run code.
        pid: the process reported in heartbeats (default: this one).
    """

    def __init__(
        self, settings: Settings, url: str, *, trusted: bool, pid: int | None = None
    ) -> None:
        self._settings = settings
        self._url = url
        self._pid = os.getpid() if pid is None else pid
        self._trusted = trusted
        self._client: Client | None = None
        self._opening = threading.Lock()

    @property
    def client(self) -> Client:
        client = self._client
        if client is None:
            with self._opening:
                if self._client is None:
                    from ..client import Client

                    self._client = Client(self._settings)
                client = self._client
        return client

    def deployment(self, name: str) -> Deployment:
        return self.client.deployments.get(name)

    def resolve(self, model_uri: str) -> tuple[str, int]:
        from ..errors import InvalidInput
        from ..registry.loading import parse_model_uri

        parsed = parse_model_uri(model_uri)
        if parsed.kind != "models" or parsed.name is None or parsed.ref is None:
            raise InvalidInput(
                f"a deployment variant serves a registered model; {model_uri!r} is not a "
                "models:/NAME@ALIAS or models:/NAME/VERSION URI"
            )
        version = self.client.registry.resolve(parsed.name, parsed.ref)
        return version.model, version.version

    def source(self, model: str, version: int) -> ModelSource:
        from ..serving.sources import resolve_source

        return resolve_source(f"models:/{model}/{version}", self.client, trusted=self._trusted)

    def heartbeat(self, name: str) -> None:
        self.client.deployments.heartbeat(name, self._url, self._pid, socket.gethostname())

    def close(self) -> None:
        with self._opening:
            if self._client is not None:
                self._client.close()
                self._client = None


def load_deployment(
    config: ServeConfig, settings: Settings
) -> tuple[ModelRepository, DeploymentWatcher]:
    """The repository and watcher of ``config.deployment``, its models loaded.

    Raises:
        NotFound: no such deployment, or a model, alias or version its variants name.
        UntrustedModel: a package needs ``--trusted``.
    """
    from ..serving.repository import ModelRepository
    from ..serving.server import CONFIG_VARIABLE
    from ..serving.watcher import DeploymentWatcher

    assert config.deployment is not None
    # A worker of `serve --workers N` (its configuration came in the environment): the workers
    # share one address, so the serve command, their parent, is the instance. Their own pids
    # in turn would make every heartbeat a restart (a new started_at each time).
    pid = os.getppid() if os.environ.get(CONFIG_VARIABLE) else os.getpid()
    lookup = ClientLookup(settings, config.url or "", trusted=config.trusted, pid=pid)
    repository = ModelRepository(
        [],
        max_batch_size=config.max_batch_size,
        max_latency_ms=config.max_batch_latency_ms,
        features=lambda: lookup.client.features,  # variants trained on a feature service
    )
    watcher = DeploymentWatcher(
        config.deployment,
        lookup,
        repository,
        refresh_seconds=config.refresh_seconds,
        heartbeat_seconds=HEARTBEAT_SECONDS if config.url else 0,  # no address: nothing to report
    )
    try:
        watcher.load()
    except BaseException:
        lookup.close()
        raise
    return repository, watcher


def public_url(host: str, port: int) -> str:
    """The URL others reach this server at: the machine's name for a wildcard address."""
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 (a comparison: the wildcard addresses)
        host = socket.getfqdn()
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}"
