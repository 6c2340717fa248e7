"""Finding feature definitions in files: Python modules, YAML files, or a folder of both.

A ``.py`` file is executed as a module (its folder first on ``sys.path``, so it may import its
neighbours) and every definition object at its module level is collected, with the objects they
refer to. Executing it is running the editor's own code, as ``python features.py`` would.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, LoopwrightError
from ._validate import normalize
from ._yaml import load_yaml
from .definitions import DEFINITION_TYPES, to_specs
from .spec import KINDS

__all__ = ["load_specs"]

_SUFFIXES = (".py", ".yaml", ".yml")
_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def load_specs(path: str | Path) -> list[dict[str, Any]]:
    """The definition specs in ``path`` (a .py or .yaml/.yml file, or a folder of them, read in
    sorted order), in dependency order.

    Raises:
        InvalidInput: the path does not exist or has another suffix, a file fails to import or
            parse (naming it), or two files define one name differently (naming both).
    """
    root = Path(path)
    if not root.exists():
        raise InvalidInput(
            f"{root}: does not exist; give a features .py or .yaml file or a folder of them"
        )
    if root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.suffix in _SUFFIXES and p.is_file() and not _hidden(p.relative_to(root))
        )
        if not files:
            raise InvalidInput(f"{root}: holds no .py, .yaml or .yml file")
    elif root.suffix in _SUFFIXES:
        files = [root]
    else:
        raise InvalidInput(f"{root}: is not a .py, .yaml or .yml file")
    found: dict[tuple[str, str], tuple[dict[str, Any], Path]] = {}
    for file in files:
        for spec in _load_file(file):
            key = (str(spec.get("kind")), str(spec.get("name")))
            if key in found and not _same(found[key][0], spec):
                raise InvalidInput(
                    f"{key[0].replace('_', ' ')} {key[1]!r} is defined differently in "
                    f"{found[key][1]} and {file}; keep one"
                )
            found.setdefault(key, (spec, file))
    specs = [spec for spec, _ in found.values()]
    return sorted(specs, key=lambda s: _ORDER.get(s.get("kind"), len(_ORDER)))  # type: ignore[arg-type]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two specs are one definition (however written); malformed ones compare as
    written, and validation names their fault later."""
    try:
        return normalize(a) == normalize(b)
    except InvalidInput:
        return a == b


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in relative.parts)


def _load_file(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".py":
        return _load_module(path)
    return load_yaml(path)


def _load_module(path: Path) -> list[dict[str, Any]]:
    name = f"_loopwright_features_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise InvalidInput(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    folder = str(path.resolve().parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    sys.modules[name] = module  # dataclasses and inspect look a module up by name
    try:
        module_spec.loader.exec_module(module)
        objects = [v for v in vars(module).values() if isinstance(v, DEFINITION_TYPES)]
        return to_specs(objects)
    except LoopwrightError as exc:
        raise InvalidInput(f"{path}: {exc}") from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise InvalidInput(f"{path}: fails to import: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
        if folder in sys.path:
            sys.path.remove(folder)
        _forget_neighbours(set(sys.modules) - before, Path(folder))


def _forget_neighbours(added: set[str], folder: Path) -> None:
    """Unload the modules a definitions file imported from its own folder: another folder's
    ``common.py`` must not be answered by this one's (a view bound to the wrong entity)."""
    for name in added:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file is not None and Path(file).resolve().is_relative_to(folder):
            del sys.modules[name]
