"""Where a pipeline's code comes from: what its tracked run records as code version and entry.

A run's own capture looks at the running program (the ``__main__`` script's folder, else the
working directory): for ``loopwright pipelines run`` that is wherever the ``loopwright`` script
is installed, and through a server the server's. A pipeline run records the repository of the
pipeline *module's* folder instead (commit, branch, dirty and diff, cached a few seconds per
folder as run capture is), and as entry point its reference and file, ``flows.train:training
(flows/train.py)``; its step runs copy both.
"""

from __future__ import annotations

import inspect
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..tracking.capture import RunContext, capture_environment, current_code_version

__all__ = ["pipeline_context"]

_HOST = socket.gethostname()


def pipeline_context(fn: Callable[..., Any], ref: str) -> RunContext:
    """The code version of the repository holding ``fn``'s module, and ``ref`` with the module's
    file as entry point (the running program's code version when the module has no file)."""
    file = _module_file(fn)
    if file is None:
        code, entry = current_code_version(), ref
    else:
        code = current_code_version(os.path.dirname(file))
        entry = f"{ref} ({_relative(file, ref.partition(':')[0])})"
    return RunContext(host=_HOST, entry_point=entry, code=code, environment=capture_environment())


def _module_file(fn: Callable[..., Any]) -> str | None:
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not file:
        try:
            file = inspect.getsourcefile(inspect.unwrap(fn))
        except TypeError:  # a builtin or a C function: no file
            return None
    return os.path.abspath(file) if file and os.path.isfile(file) else None


def _relative(file: str, module: str) -> str:
    """``file`` from the folder its module is imported from: ``flows/train.py`` for
    ``flows.train`` (a package's ``__init__.py`` keeps the package folder)."""
    path = Path(file)
    depth = module.count(".") + 1 if module and module != "__main__" else 1
    if path.name == "__init__.py":
        depth += 1
    return Path(*path.parts[-depth:]).as_posix()
