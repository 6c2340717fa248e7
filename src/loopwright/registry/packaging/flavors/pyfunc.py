"""Any object with a ``predict`` method whose class is defined in your own code.

The package holds the source file of the class's module under ``code/`` (next to any
``code_paths`` given to ``save_model``) and the object's state as JSON in ``state.json``: the
value of ``to_config()`` when the class also has a ``from_config`` classmethod, otherwise the
object's ``__dict__``. State that is not plain JSON is refused (no pickle). Loading imports the
packaged source, which runs it, so pyfunc packages record ``executes_code`` and load only with
``trusted=True``.

The class's module is loaded from its file as a top-level module: it may import modules shipped
with ``code_paths`` (absolute imports), not its own package's relatives.
"""

from __future__ import annotations

import filecmp
import inspect
import json
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....errors import InvalidInput, InvalidModelPackage
from .._trust import untrusted
from ..signature import Signature
from ._code import import_file
from ._protocol import option, package_file

__all__ = ["CODE_DIR", "PyfuncFlavor"]

CODE_DIR = "code"
STATE_FILE = "state.json"


class PyfuncFlavor:
    """A user-defined Python class with ``predict``: source code plus JSON state."""

    name = "pyfunc"
    uses_pickle = False
    executes_code = True

    def handles(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None)) and not _library_class(type(model))

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        cls = type(model)
        source = _source_file(cls)
        code = folder / CODE_DIR
        code.mkdir(exist_ok=True)
        target = code / source.name
        if target.exists() and not filecmp.cmp(source, target, shallow=False):
            raise InvalidInput(
                f"code_paths already hold a different {source.name!r}; rename one of them"
            )
        shutil.copyfile(source, target)
        if callable(getattr(model, "to_config", None)) and hasattr(cls, "from_config"):
            state_kind, state = "config", model.to_config()
        else:
            state_kind, state = "dict", dict(vars(model))
        (folder / STATE_FILE).write_text(_state_json(cls, state_kind, state), encoding="utf-8")
        return {
            "module_file": f"{CODE_DIR}/{source.name}",
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "state_file": STATE_FILE,
            "state_kind": state_kind,
        }

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        if not trusted:
            raise untrusted("this pyfunc package", "imports the Python code it ships")
        source = package_file(folder, options, "module_file", self.name)
        state_path = package_file(folder, options, "state_file", self.name)
        qualname = option(options, "qualname", str, self.name)
        state_kind = option(options, "state_kind", str, self.name)
        code_dir = folder / CODE_DIR
        module = import_file(source, code_dir if code_dir.is_dir() else None)
        found: Any = module
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if not isinstance(found, type):
            raise InvalidModelPackage(f"the packaged code defines no class {qualname!r}")
        cls: Any = found
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state_kind == "config":
            return cls.from_config(state)
        if state_kind != "dict" or not isinstance(state, dict):
            raise InvalidModelPackage(f"the pyfunc state ({state_kind!r}) is unusable")
        native = cls.__new__(cls)
        native.__dict__.update(state)
        return native

    def predict(self, native: Any, data: Any) -> Any:
        return native.predict(data)

    def libraries(self) -> dict[str, str]:
        return {}

    def signature(self, model: Any) -> Signature | None:
        return None


def _library_class(cls: type) -> bool:
    """Whether ``cls`` comes from the standard library, an installed distribution or Loopwright."""
    if cls.__module__.partition(".")[0] == "loopwright":
        return True
    module = sys.modules.get(cls.__module__)
    location = getattr(module, "__file__", None)
    if cls.__module__ == "builtins" or location is None:
        return cls.__module__ != "__main__"
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    resolved = Path(location).resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


def _source_file(cls: type) -> Path:
    where = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__ == "__main__":
        raise InvalidInput(
            f"{where} is defined in the script being run; move the class into a module file "
            "and import it, so the package can ship that file (and not re-run your script)"
        )
    if "<locals>" in cls.__qualname__:
        raise InvalidInput(f"{where} is defined inside a function; define it at module level")
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    if source is None or not source.endswith(".py"):
        raise InvalidInput(f"cannot find the .py source file of {where}; define it in a .py file")
    return Path(source)


def _state_json(cls: type, kind: str, state: Any) -> str:
    try:
        return json.dumps(state, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        culprit = ""
        if isinstance(state, dict):
            for key, value in state.items():
                try:
                    json.dumps(value, allow_nan=False)
                except (TypeError, ValueError):
                    culprit = f" (attribute {key!r} is {type(value).__name__})"
                    break
        origin = "to_config()" if kind == "config" else "__dict__"
        raise InvalidInput(
            f"cannot package {cls.__qualname__}: its state ({origin}) is not plain JSON{culprit}: "
            f"{exc}. Add to_config() returning JSON values and a from_config classmethod, or "
            "use the flavor of the library the model comes from (no pickle)"
        ) from None
