"""Project templates that ``loopwright init --template NAME`` writes.

A template is a folder of files beside this module (package data, shipped in the wheel). Its
files are copied with three changes: ``{{name}}`` becomes the project's name (from the target
folder), a ``.tmpl`` suffix is dropped (so the template's Python files are not taken for this
package's modules by linters and type checkers), and a leading ``dot-`` becomes ``.``
(``dot-github/`` is written as ``.github/``: dot-folders are easy to lose in packaging).

Example:
    >>> sorted(TEMPLATES)
    ['tabular-classifier']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import AlreadyExists, InvalidInput

__all__ = ["TEMPLATES", "Written", "project_name", "write_template"]

_HERE = Path(__file__).parent
TEMPLATES: dict[str, str] = {
    "tabular-classifier": "tabular_classifier",
}
_SUFFIX = ".tmpl"
_DOT = "dot-"


@dataclass(frozen=True)
class Written:
    """What :func:`write_template` wrote: the project folder, its name and the files."""

    folder: Path
    name: str
    files: tuple[Path, ...]


def project_name(folder: Path) -> str:
    """A model and dataset name from the folder's name: lowercase letters, digits and dashes
    (``My Project`` → ``my-project``); ``model`` when nothing usable is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-")
    if slug and not slug[0].isalpha():
        slug = "m-" + slug
    return slug[:60].rstrip("-") or "model"


def write_template(template: str, folder: Path, *, force: bool = False) -> Written:
    """Write ``template`` into ``folder`` (created if needed).

    Refuses, writing nothing, when any of its files exists already (``AlreadyExists`` names
    them) unless ``force``, which overwrites those files and leaves other files alone.
    """
    source = TEMPLATES.get(template)
    if source is None:
        raise InvalidInput(
            f"there is no template {template!r}; templates: {', '.join(sorted(TEMPLATES))}"
        )
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{folder} is a file, not a folder; give --dir a folder")
    root = _HERE / source
    name = project_name(folder)
    plan = [(path, folder / _target(path.relative_to(root))) for path in _files(root)]
    blocked = [target for _, target in plan if target.is_symlink() or target.is_dir()]
    if blocked:
        raise InvalidInput(
            f"{blocked[0]} is a link or a folder where the template writes a file; move it "
            "away and run again"
        )
    existing = [target for _, target in plan if target.exists()]
    if existing and not force:
        shown = ", ".join(str(p.relative_to(folder)) for p in existing[:10])
        more = f" and {len(existing) - 10} more" if len(existing) > 10 else ""
        raise AlreadyExists(
            f"{folder} already has {shown}{more}; nothing was written. Pick an empty --dir, "
            "or pass --force to overwrite those files"
        )
    for path, target in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8").replace("{{name}}", name), "utf-8")
    return Written(folder, name, tuple(target for _, target in plan))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _target(relative: Path) -> Path:
    parts = [("." + p[len(_DOT) :]) if p.startswith(_DOT) else p for p in relative.parts]
    parts[-1] = parts[-1].removesuffix(_SUFFIX)
    return Path(*parts)
