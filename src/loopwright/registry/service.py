"""The model registry service: models, versions, aliases, stages and approvals in one object.

The parts live in their own modules (``_models``, ``_versions``, ``_lifecycle``, ``approvals``);
:class:`RegistryService` puts them together. Every change is one transaction that locks the
registered model's row first and appends its audit event(s) before committing.

Example:
    >>> from sklearn.dummy import DummyClassifier
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.registry.packaging.package import save_model
    >>> from loopwright.store.home import open_store
    >>> _ = save_model(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), "pkg")
    >>> registry = RegistryService(open_store(resolve_settings(home="lw-doc-registry")))
    >>> registry.register("churn", "pkg").ref
    'models:/churn/1'
    >>> registry.set_alias("churn", "candidate", 1).version.aliases
    ('candidate',)
    >>> registry.transition_stage("churn", 1, "Production").status  # protected: a request
    'pending'
"""

from __future__ import annotations

from collections.abc import Callable

from .._ids import now_ms
from ..store.home import Store
from ._changes import TRANSITIONS as TRANSITIONS
from ._external import ExternalVersionsMixin
from ._lifecycle import LifecycleMixin
from ._models import CARD_FIELDS as CARD_FIELDS

__all__ = ["CARD_FIELDS", "TRANSITIONS", "RegistryService"]


class RegistryService(ExternalVersionsMixin, LifecycleMixin):
    """Register and find model versions; move aliases and stages under approval policies.

    Args:
        store: the metadata and blob stores.
        actor: who changes are recorded as and who decides approvals (default: the store's
            user, i.e. the ``user`` setting or the OS user).
        clock: the time in UTC milliseconds (tests pass a fake one to expire requests).
    """

    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor
        self._clock = clock or now_ms
