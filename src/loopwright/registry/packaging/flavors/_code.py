"""Importing code shipped inside a package without leaving it in ``sys.modules``.

The package's ``code/`` folder goes on ``sys.path`` only while its entry module runs, under a
lock. The entry module gets a unique name, so two packages with a ``model.py`` each never see
each other's; modules it imported from ``code/`` are dropped from ``sys.modules`` afterwards, so
the next package imports its own copies. Code that imports its siblings lazily (inside functions)
therefore cannot find them later: import them at module level.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from ....errors import InvalidModelPackage

__all__ = ["import_file", "import_module", "run_with_code"]

_lock = threading.Lock()
_T = TypeVar("_T")


def import_file(path: Path, code_dir: Path | None) -> ModuleType:
    """Run the source file ``path`` as a fresh module with ``code_dir`` importable meanwhile."""
    name = f"_loopwright_code_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidModelPackage(f"cannot import {path.name!r} from the package")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def run() -> ModuleType:
        # Registered while it runs (dataclasses and typing look modules up by name), and kept:
        # its unique name cannot collide with anything.
        sys.modules[name] = module
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module

    return run_with_code(code_dir, run)


def import_module(name: str, code_dir: Path | None) -> ModuleType:
    """Import the module ``name``, looking in ``code_dir`` first, without keeping its copies."""
    return run_with_code(code_dir, lambda: importlib.import_module(name))


def run_with_code(code_dir: Path | None, action: Callable[[], _T]) -> _T:
    """Call ``action`` while ``code_dir`` is importable, then forget the modules it imported."""
    if code_dir is None:
        return action()
    with _lock, _on_path(code_dir):
        return action()


@contextmanager
def _on_path(code_dir: Path) -> Iterator[None]:
    root = str(code_dir.resolve())
    before = set(sys.modules)
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(root)
        for name in set(sys.modules) - before:
            if _inside(sys.modules.get(name), root):
                del sys.modules[name]


def _inside(module: Any, root: str) -> bool:
    location = getattr(module, "__file__", None)
    if not location or getattr(module, "__name__", "").startswith("_loopwright_code_"):
        return False
    return Path(location).resolve().is_relative_to(root)
