"""The model registry: safe model packages, versions, aliases, stages, approvals, cards, SBOM.

Example:
    >>> from loopwright.registry import Stage
    >>> Stage("Production") is Stage.PRODUCTION
    True

Names load on first use, so importing a light module (``registry.packaging.signature``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .entities import AliasChange as AliasChange
    from .entities import ApprovalDecision as ApprovalDecision
    from .entities import ApprovalPolicy as ApprovalPolicy
    from .entities import ApprovalRequest as ApprovalRequest
    from .entities import ApprovalRule as ApprovalRule
    from .entities import ModelVersion as ModelVersion
    from .entities import RegisteredModel as RegisteredModel
    from .entities import Stage as Stage
    from .model_logging import ModelInfo as ModelInfo
    from .packaging.loaded import LoadedModel as LoadedModel
    from .packaging.package import PackageManifest as PackageManifest
    from .packaging.package import load_package as load_package
    from .packaging.package import save_model as save_model
    from .packaging.signature import ColumnSpec as ColumnSpec
    from .packaging.signature import Signature as Signature
    from .packaging.signature import infer_signature as infer_signature
    from .reports.card import ModelCard as ModelCard
    from .service import RegistryService as RegistryService

_LAZY = {
    "ModelCard": "reports.card",
    "AliasChange": "entities",
    "ApprovalDecision": "entities",
    "ApprovalPolicy": "entities",
    "ApprovalRequest": "entities",
    "ApprovalRule": "entities",
    "ModelVersion": "entities",
    "RegisteredModel": "entities",
    "Stage": "entities",
    "LoadedModel": "packaging.loaded",
    "ModelInfo": "model_logging",
    "PackageManifest": "packaging.package",
    "load_package": "packaging.package",
    "save_model": "packaging.package",
    "RegistryService": "service",
    "ColumnSpec": "packaging.signature",
    "Signature": "packaging.signature",
    "infer_signature": "packaging.signature",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY, globals())
