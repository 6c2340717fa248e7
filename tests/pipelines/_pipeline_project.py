"""A project folder whose modules a pipeline test writes and imports (see conftest)."""

from __future__ import annotations

import importlib
import shutil
import sys
import textwrap
from pathlib import Path
from types import ModuleType


class Project:
    """A folder on ``sys.path`` whose modules the test writes and imports."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: set[str] = set()

    def write(self, name: str, source: str) -> ModuleType:
        """Write ``name.py`` (dedented) and import it afresh."""
        (self.folder / f"{name}.py").write_text(textwrap.dedent(source))
        shutil.rmtree(self.folder / "__pycache__", ignore_errors=True)
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        self.names.add(name)
        return importlib.import_module(name)
