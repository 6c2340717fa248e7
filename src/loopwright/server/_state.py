"""What one server process holds: the stores, the shared services, and whether auth is on."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from ..data.service import DatasetService
    from ..features.service import FeatureStore
    from ..governance.tokens import Identity, TokenService
    from ..governance.users import UserService
    from ..registry.service import RegistryService
    from ..serving.deployments import DeploymentService
    from ..store.home import Store
    from ..tracking import TrackingService

__all__ = ["ServerState"]


@dataclass
class ServerState:
    """Shared by every request. Services that record an actor are made per caller."""

    settings: Settings
    store: Store
    tracking: TrackingService
    datasets: DatasetService
    tokens: TokenService
    auth_enabled: bool
    default_user: str
    # One feature store per server: one online store connection and definitions cache shared
    # by every request (made on first use; changes act for their caller through it).
    _features: list[FeatureStore] = field(default_factory=list, repr=False)
    _features_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def registry(self, identity: Identity) -> RegistryService:
        from ..registry.service import RegistryService

        return RegistryService(self.store, actor=identity.user)

    def deployments(self, identity: Identity) -> DeploymentService:
        from ..serving.deployments import DeploymentService

        return DeploymentService(self.store, actor=identity.user)

    def users(self, identity: Identity) -> UserService:
        from ..governance.users import UserService

        return UserService(self.store, actor=identity.user)

    def features(self) -> FeatureStore:
        if not self._features:
            with self._features_lock:
                if not self._features:
                    from ..features.service import FeatureStore
                    from ..registry.service import RegistryService
                    from ..serving.deployments import DeploymentService
                    from ..serving.prediction_log import log_location
                    from ..serving.predictions import PredictionService

                    self._features.append(
                        FeatureStore(
                            self.store,
                            self.settings,
                            datasets=self.datasets,
                            tracking=self.tracking,
                            predictions_factory=lambda: PredictionService(
                                log_location(self.settings)
                            ),
                            deployments=DeploymentService(self.store),
                            registry=RegistryService(self.store),
                        )
                    )
        return self._features[0]

    def close(self) -> None:
        for features in self._features:
            features.close()
        self.tracking.close()
        self.datasets.close()
        self.store.close()
