"""scikit-learn models stored with skops (``model.skops``), never pickle.

skops rebuilds an estimator from a description of its state and refuses, by default, every
type it does not know to be safe to construct. On load this flavor asks skops which types the
file refers to outside its defaults and refuses the package, naming them, unless the caller
passes ``trusted=True``. A short list of scikit-learn's own fitted-state classes (tree
structures, neighbour indexes, optimiser state), which skops rebuilds from arrays through their
constructors and ``__setstate__`` without running code the file chooses, is also accepted, so
that trees, forests and boosting models load without opting in.

Packages imported from MLflow may hold a pickle instead (``serialization`` ``pickle`` or
``cloudpickle``); those load only through :mod:`loopwright.registry.packaging._safe_pickle`, with
``trusted=True``. They may also carry the model's custom code (option ``code``), importable
while loading, which also needs ``trusted=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....errors import InvalidInput, InvalidModelPackage
from .._safe_pickle import load_pickle
from .._trust import untrusted
from ..signature import Signature
from ._code import run_with_code
from ._protocol import defined_in, option, package_file

__all__ = ["MODEL_FILE", "SAFE_SKLEARN_TYPES", "SklearnFlavor"]

MODEL_FILE = "model.skops"
PICKLE_FORMATS = frozenset({"pickle", "cloudpickle"})
SAFE_SKLEARN_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


class SklearnFlavor:
    """scikit-learn estimators and pipelines, as skops files."""

    name = "sklearn"
    uses_pickle = False
    executes_code = False

    def handles(self, model: Any) -> bool:
        return defined_in(model, "sklearn")

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        import skops.io

        path = folder / MODEL_FILE
        skops.io.dump(model, path)
        untrusted_types = skops.io.get_untrusted_types(file=path)
        inline = [name for name in untrusted_types if "<lambda>" in name or "<locals>" in name]
        if inline:
            # skops stores functions by name: these could be saved but never loaded back.
            raise InvalidInput(
                f"the model refers to {', '.join(inline)}, which cannot be loaded back by name; "
                "define those functions at module level"
            )
        return {
            "serialization": "skops",
            "file": MODEL_FILE,
            "untrusted_types": [t for t in untrusted_types if t not in SAFE_SKLEARN_TYPES],
        }

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        serialization = option(options, "serialization", str, self.name)
        path = package_file(folder, options, "file", self.name)
        code_dir = None
        if options.get("code") is not None:
            code_dir = package_file(folder, options, "code", self.name)
            if not trusted:
                raise untrusted("this sklearn package", "imports the Python code it ships")
        if serialization in PICKLE_FORMATS:
            return run_with_code(code_dir, lambda: load_pickle(path, trusted=trusted))
        return run_with_code(code_dir, lambda: self._load_skops(path, serialization, trusted))

    def _load_skops(self, path: Path, serialization: str, trusted: bool) -> Any:
        if serialization != "skops":
            raise InvalidModelPackage(
                f"the sklearn flavor cannot read serialization {serialization!r}; "
                "it reads skops (and, trusted, pickle or cloudpickle)"
            )
        import skops.io

        # The types come from the file itself: what the manifest lists is not trusted.
        found = skops.io.get_untrusted_types(file=path)
        unknown = [name for name in found if name not in SAFE_SKLEARN_TYPES]
        if unknown and not trusted:
            raise untrusted(
                f"model file {path.name!r}",
                f"refers to types that skops does not consider safe ({', '.join(unknown)})",
                alternative="define the model with scikit-learn and numpy types only",
            )
        return skops.io.load(path, trusted=found)

    def predict(self, native: Any, data: Any) -> Any:
        return native.predict(data)

    def libraries(self) -> dict[str, str]:
        import sklearn
        import skops

        return {"scikit-learn": sklearn.__version__, "skops": skops.__version__}

    def signature(self, model: Any) -> Signature | None:
        return None
