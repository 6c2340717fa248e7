"""What one server process holds: the stores, the shared services, and whether auth is on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from ..data.service import DatasetService
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

    def registry(self, identity: Identity) -> RegistryService:
        from ..registry.service import RegistryService

        return RegistryService(self.store, actor=identity.user)

    def deployments(self, identity: Identity) -> DeploymentService:
        from ..serving.deployments import DeploymentService

        return DeploymentService(self.store, actor=identity.user)

    def users(self, identity: Identity) -> UserService:
        from ..governance.users import UserService

        return UserService(self.store, actor=identity.user)

    def close(self) -> None:
        self.tracking.close()
        self.datasets.close()
        self.store.close()
