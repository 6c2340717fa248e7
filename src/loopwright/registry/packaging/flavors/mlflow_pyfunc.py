"""MLflow python-function models, kept as MLflow saved them (only from MLflow imports).

Two kinds exist. ``python_model``: a ``mlflow.pyfunc.PythonModel`` instance stored with
cloudpickle (``python_model.pkl``). ``loader_module``: a module, shipped in ``code/`` or
installed, whose ``_load_pyfunc(data_path)`` returns an object with ``predict``. Both run code
chosen by the model's author when loaded, so these packages record ``uses_pickle`` and
``executes_code`` and load only with ``trusted=True``. Loading a ``python_model`` needs
``mlflow`` (or ``mlflow-skinny``) and ``cloudpickle`` installed.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....errors import InvalidInput, InvalidModelPackage
from .._safe_pickle import load_pickle
from .._trust import untrusted
from ..signature import Signature
from ._code import import_module, run_with_code
from ._protocol import option, package_file

__all__ = ["MlflowPyfuncFlavor"]

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class MlflowPyfuncFlavor:
    """MLflow ``python_function`` models imported by ``convert_mlflow_model``."""

    name = "mlflow_pyfunc"
    uses_pickle = True
    executes_code = True

    def handles(self, model: Any) -> bool:
        return False

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        raise InvalidInput(
            "the mlflow_pyfunc flavor only holds models imported from MLflow "
            "(loopwright.registry.packaging.mlflow_import.convert_mlflow_model); "
            "save your own classes with the pyfunc flavor"
        )

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        kind = option(options, "kind", str, self.name)
        code = options.get("code")
        code_dir = None if code is None else package_file(folder, options, "code", self.name)
        if kind == "python_model":
            path = package_file(folder, options, "file", self.name)
            # Checked here too, so the code folder is not put on sys.path before refusing.
            if not trusted:
                return load_pickle(path, trusted=False)
            return run_with_code(code_dir, lambda: load_pickle(path, trusted=True))
        if kind != "loader_module":
            raise InvalidModelPackage(f"the mlflow_pyfunc flavor cannot load kind {kind!r}")
        if not trusted:
            raise untrusted("this MLflow model", "runs its loader module to load")
        name = option(options, "loader_module", str, self.name)
        if not _MODULE_NAME.fullmatch(name):
            raise InvalidModelPackage(f"loader_module {name!r} is not a module name")
        data = options.get("data")
        data_path = None if data is None else package_file(folder, options, "data", self.name)
        loader = import_module(name, code_dir)
        return loader._load_pyfunc(None if data_path is None else str(data_path))

    def predict(self, native: Any, data: Any) -> Any:
        parameters = list(inspect.signature(native.predict).parameters)
        if parameters[:1] == ["context"]:
            # PythonModel.predict(self, context, model_input, params=None)
            return native.predict(None, data)
        return native.predict(data)

    def libraries(self) -> dict[str, str]:
        return {}

    def signature(self, model: Any) -> Signature | None:
        return None
