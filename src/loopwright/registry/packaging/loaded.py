"""A model loaded from a package: ``predict`` checks the input against the signature first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._examples import load_example

if TYPE_CHECKING:
    from ._package_manifest import PackageManifest
    from .flavors import Flavor
    from .signature import Signature

__all__ = ["LoadedModel"]


class LoadedModel:
    """A model read from a verified package (see :func:`~loopwright.registry.load_package`).

    Attributes:
        manifest: the package's manifest; ``manifest.hash`` identifies the package.
        signature: what ``predict`` accepts, or ``None`` if the package declares nothing.
        flavor: the flavor's name (``"sklearn"``, ``"onnx"`` ...).
        raw: the object the flavor loaded (an estimator, an ``InferenceSession`` ...).
        metadata: the package's hash, flavor, versions, creation time and folder.
    """

    def __init__(self, manifest: PackageManifest, flavor: Flavor, raw: Any, folder: Path) -> None:
        self.manifest = manifest
        self.signature: Signature | None = manifest.signature
        self.flavor = flavor.name
        self.raw = raw
        self.metadata: dict[str, Any] = {
            "hash": manifest.hash,
            "flavor": flavor.name,
            "python": manifest.python,
            "libraries": dict(manifest.libraries),
            "created_at": manifest.created_at,
            "uses_pickle": manifest.uses_pickle,
            "executes_code": manifest.executes_code,
            "path": str(folder),
        }
        self._flavor = flavor
        self._folder = folder

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, hash={self.manifest.hash[:12]!r})"

    def predict(self, data: Any) -> Any:
        """Predict on ``data`` once it passes the signature (reordered and widened as needed).

        Raises:
            SignatureError: ``data`` lacks a column or has one of the wrong type.
        """
        return self._flavor.predict(self.raw, self._checked(data))

    @property
    def predict_proba(self) -> Callable[[Any], Any]:
        """Class probabilities, checked against the signature like ``predict``.

        Only present when the loaded model has ``predict_proba`` (``hasattr`` tells).
        """
        native = getattr(self.raw, "predict_proba", None)
        if not callable(native):
            raise AttributeError(f"the {self.flavor} model has no predict_proba")

        def predict_proba(data: Any) -> Any:
            return native(self._checked(data))

        return predict_proba

    @property
    def input_example(self) -> Any:
        """The input example saved with the model, or ``None``."""
        if self.manifest.input_example is None:
            return None
        return load_example((self._folder / self.manifest.input_example).read_bytes())

    def _checked(self, data: Any) -> Any:
        if self.signature is None:
            return data
        what = f"model package {self.manifest.hash[:12]} ({self.flavor})"
        return self.signature.validate(data, what=what)
