"""The model registry: safe model packages, versions, aliases, stages, approvals, cards, SBOM.

Example:
    >>> from loopwright.registry import Stage
    >>> Stage("Production") is Stage.PRODUCTION
    True

Names load on first use, so importing a light module (``registry.signature``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .card import ModelCard as ModelCard
    from .entities import AliasChange as AliasChange
    from .entities import ApprovalDecision as ApprovalDecision
    from .entities import ApprovalPolicy as ApprovalPolicy
    from .entities import ApprovalRequest as ApprovalRequest
    from .entities import ApprovalRule as ApprovalRule
    from .entities import ModelVersion as ModelVersion
    from .entities import RegisteredModel as RegisteredModel
    from .entities import Stage as Stage
    from .loaded import LoadedModel as LoadedModel
    from .model_logging import ModelInfo as ModelInfo
    from .package import PackageManifest as PackageManifest
    from .package import load_package as load_package
    from .package import save_model as save_model
    from .service import RegistryService as RegistryService
    from .signature import ColumnSpec as ColumnSpec
    from .signature import Signature as Signature
    from .signature import infer_signature as infer_signature

_LAZY = {
    "ModelCard": "card",
    "AliasChange": "entities",
    "ApprovalDecision": "entities",
    "ApprovalPolicy": "entities",
    "ApprovalRequest": "entities",
    "ApprovalRule": "entities",
    "ModelVersion": "entities",
    "RegisteredModel": "entities",
    "Stage": "entities",
    "LoadedModel": "loaded",
    "ModelInfo": "model_logging",
    "PackageManifest": "package",
    "load_package": "package",
    "save_model": "package",
    "RegistryService": "service",
    "ColumnSpec": "signature",
    "Signature": "signature",
    "infer_signature": "signature",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'loopwright.registry' has no attribute {name!r}")
