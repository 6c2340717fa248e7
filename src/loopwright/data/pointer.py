"""Pointer files: small text files committed to Git that name the dataset version of a path.

``data/train.parquet`` is described by ``data/train.parquet.lw``; after ``git checkout <commit>``,
``loopwright data checkout data/train.parquet.lw`` restores the data of that commit. The data
itself is listed in a ``.gitignore`` beside it so that Git keeps only the pointer.

The format is a few ``key: value`` lines (valid YAML), readable without a YAML library.
``id`` and ``content_hash`` identify the version on every machine; ``version`` (the number) is
this store's counting and may differ in another store that pulled the same content. A pointer
may come from an untrusted repository, so every field is checked when it is read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._numbers import is_number
from ..errors import InvalidInput
from ..paths import normalize_relpath
from ._names import check_dataset_name
from .entities import DatasetVersion

__all__ = [
    "POINTER_SUFFIX",
    "Pointer",
    "check_inside_repository",
    "is_content_hash",
    "read_pointer",
    "write_pointer",
]

POINTER_SUFFIX = ".lw"
_HEADER = (
    "# Loopwright dataset pointer: `loopwright data checkout {name}` restores the data.\n"
    "# id and content_hash name the version everywhere; the version number is local to a store.\n"
)
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_ID = re.compile(r"[0-9a-f]{32}\Z")
_KEYS = ("dataset", "version", "id", "content_hash", "path")


@dataclass(frozen=True)
class Pointer:
    dataset: str
    version: int
    id: str
    content_hash: str
    path: str  # the data's name beside the pointer (a file or a folder)

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.id}"


def is_content_hash(value: str) -> bool:
    """Whether ``value`` has the form of a BLAKE3 digest: 64 lowercase hex digits."""
    return _HEX64.match(value) is not None


def _repository_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def check_inside_repository(data_path: str | os.PathLike[str]) -> None:
    """Refuse a path outside the Git repository of the working folder, as DVC does: its pointer
    and ``.gitignore`` line would be written outside the repository, where Git never sees them.
    Outside any repository, every path is accepted."""
    root = _repository_root(Path.cwd().resolve())
    if root is None:
        return
    data = Path(data_path).resolve()
    if root not in data.parents:  # the root itself too: its pointer would be beside it
        raise InvalidInput(
            f"{data_path} is outside the Git repository {root}; its pointer file and .gitignore "
            "would be written there, out of Git's sight. Move or copy the data into the "
            "repository, or add it with --no-pointer"
        )


def write_pointer(data_path: str | os.PathLike[str], version: DatasetVersion) -> Path:
    """Write ``<data_path>.lw`` and list ``data_path`` in the ``.gitignore`` beside it
    (refused for a path outside the working folder's Git repository)."""
    check_inside_repository(data_path)
    data = Path(data_path)
    if data.name in ("", ".", ".."):  # "." names the current folder: use its real name
        data = data.resolve()
    pointer = data.with_name(data.name + POINTER_SUFFIX)
    values = {
        "dataset": version.dataset,
        "version": str(version.number),
        "id": version.id,
        "content_hash": version.content_hash,
        "path": data.name,
    }
    text = _HEADER.format(name=pointer.name) + "".join(f"{k}: {values[k]}\n" for k in _KEYS)
    pointer.write_text(text, encoding="utf-8")
    ignore = data.parent / ".gitignore"
    line = f"/{data.name}"
    existing = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if line not in existing:
        with ignore.open("a", encoding="utf-8") as handle:
            if existing and not ignore.read_text(encoding="utf-8").endswith("\n"):
                handle.write("\n")
            handle.write(line + "\n")
    return pointer


def read_pointer(path: str | os.PathLike[str]) -> Pointer:
    """Parse a pointer file; a malformed one raises an error naming the file and the problem."""
    pointer = Path(path)
    try:
        lines = pointer.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read the pointer file {pointer}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise InvalidInput(
            f"{pointer} is not a pointer file (not UTF-8 text); restore it from Git or re-create "
            "it with `loopwright data add`"
        ) from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or key.strip() not in _KEYS:
            raise InvalidInput(f"{pointer}:{number}: expected 'key: value' with a key of {_KEYS}")
        values[key.strip()] = value.strip()
    missing = [key for key in _KEYS if key not in values]
    if missing:
        raise InvalidInput(f"{pointer}: missing {', '.join(missing)}; re-create it with data add")
    _check_fields(pointer, values)
    # The pointer may come from an untrusted repository: its path must stay beside it.
    try:
        name = normalize_relpath(values["path"], what="path")
    except InvalidInput as exc:
        raise InvalidInput(f"{pointer}: 'path' must be a plain name beside it: {exc}") from None
    if "/" in name:
        raise InvalidInput(f"{pointer}: 'path' must be a plain name beside it, not {name!r}")
    values["path"] = name
    return Pointer(
        values["dataset"],
        int(values["version"]),
        values["id"],
        values["content_hash"],
        values["path"],
    )


def _check_fields(pointer: Path, values: dict[str, str]) -> None:
    problems = []
    if not (is_number(values["version"]) and len(values["version"]) <= 18):
        problems.append("'version' must be a number")
    if not _ID.match(values["id"]):
        problems.append("'id' must be 32 lowercase hex digits")
    if not is_content_hash(values["content_hash"]):
        problems.append("'content_hash' must be 64 lowercase hex digits")
    try:
        check_dataset_name(values["dataset"])
    except InvalidInput as exc:
        problems.append(exc.message)
    if problems:
        raise InvalidInput(
            f"{pointer}: {'; '.join(problems)}; restore the file from Git or re-create it "
            "with `loopwright data add`"
        )
