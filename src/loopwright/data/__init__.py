"""Data versioning: datasets, versions, manifests, profiles, validation.

Example:
    >>> from loopwright.data import Suite
    >>> Suite("churn-checks").not_null("customer_id").expectations[0].kind
    'not_null'

Names load on first use, so importing a light module (``data.entities``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .entities import Dataset as Dataset
    from .entities import DatasetDiff as DatasetDiff
    from .entities import DatasetVersion as DatasetVersion
    from .entities import FileEntry as FileEntry
    from .entities import WorkspaceStatus as WorkspaceStatus
    from .pointer import Pointer as Pointer
    from .protocol import Datasets as Datasets
    from .service import DatasetService as DatasetService
    from .validation import Expectation as Expectation
    from .validation import ExpectationResult as ExpectationResult
    from .validation import Suite as Suite
    from .validation import ValidationResult as ValidationResult

_LAZY = {
    "Dataset": "entities",
    "DatasetDiff": "entities",
    "DatasetVersion": "entities",
    "FileEntry": "entities",
    "WorkspaceStatus": "entities",
    "Pointer": "pointer",
    "Datasets": "protocol",
    "DatasetService": "service",
    "Expectation": "validation",
    "ExpectationResult": "validation",
    "Suite": "validation",
    "ValidationResult": "validation",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY, globals())
