"""Moving models in: register an MLflow model folder as a new version of a registered model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NotFound

if TYPE_CHECKING:
    from .entities import ModelVersion
    from .protocol import Registry

__all__ = ["import_mlflow_model"]


def import_mlflow_model(
    registry: Registry,
    path: str | os.PathLike[str],
    name: str,
    *,
    trusted: bool = False,
    description: str | None = None,
) -> ModelVersion:
    """Convert the MLflow model folder ``path`` (with its ``MLmodel``) and register it as ``name``.

    The signature and input example carry over. Pickled models stay pickled (loading them needs
    ``trusted=True``) unless ``trusted=True`` is given here, in which case they are loaded once
    and re-saved in a safe format (skops or the library's native one).
    """
    from .packaging.mlflow_import import convert_mlflow_model

    source = Path(path)
    if not (source / "MLmodel").is_file():
        raise NotFound(f"{str(source)!r} is not an MLflow model folder (no MLmodel file in it)")
    with tempfile.TemporaryDirectory(prefix="lw-mlflow-import-") as tmp:
        package = Path(tmp) / "package"
        convert_mlflow_model(source, package, trusted=trusted)
        return registry.register(
            name, package, description=description, source=f"mlflow:{source.resolve()}"
        )
