"""``run.log_model``: package a model into a run's artifacts and, optionally, register it.

Tracking sits below the registry, so the client hands :func:`log_model` to each run handle it makes
(``ActiveRun.log_model`` calls it) rather than tracking importing it; the
packaging itself (flavors, signatures, hashes) lives in :mod:`loopwright.registry.packaging`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidInput
from ..paths import normalize_relpath

if TYPE_CHECKING:
    from ..tracking.protocol import Tracking
    from .entities import ModelVersion
    from .packaging.signature import Signature
    from .protocol import Registry

__all__ = ["ModelInfo", "log_model"]


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` stored; ``lw.load_model(info.model_uri)`` loads it back."""

    run_id: str
    artifact_path: str
    flavor: str
    package_hash: str
    signature: Signature | None
    registered_version: ModelVersion | None = None

    @property
    def model_uri(self) -> str:
        return f"runs:/{self.run_id}/{self.artifact_path}"


def log_model(
    tracking: Tracking,
    run_id: str,
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Signature | Literal["infer"] | None = "infer",
    flavor: str | None = None,
    code_paths: Sequence[str | Path] | None = None,
    registered_model_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> ModelInfo:
    """Save ``model`` as a package in the run's artifacts at ``name`` (see ActiveRun.log_model);
    with ``registered_model_name``, also register it in ``registry`` (the client's)."""
    if registered_model_name is not None and registry is None:
        raise InvalidInput(
            f"registering {registered_model_name!r} needs the registry to register it in; "
            "log models through a client's run (client.start_run(...).log_model)"
        )
    from .packaging.package import save_model

    artifact_path = normalize_relpath(name, what="model name")
    with tempfile.TemporaryDirectory(prefix="lw-model-") as tmp:
        folder = Path(tmp) / "package"
        manifest = save_model(
            model,
            folder,
            flavor=flavor,
            signature=signature,
            input_example=input_example,
            code_paths=code_paths,
        )
        tracking.log_artifacts(run_id, folder, artifact_path)
    version = None
    if registered_model_name is not None and registry is not None:
        version = registry.register(
            registered_model_name, run_id=run_id, artifact_path=artifact_path, tags=tags
        )
    return ModelInfo(
        run_id=run_id,
        artifact_path=artifact_path,
        flavor=manifest.flavor,
        package_hash=manifest.hash,
        signature=manifest.signature,
        registered_version=version,
    )
