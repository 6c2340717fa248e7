"""Materializers: how a step's inputs and outputs become files, a digest, and values again.

:func:`save` writes a value under a folder with the first materializer that takes its type
(user materializers from :func:`register_materializer` first, then the built-ins below) and
returns a :class:`Stored`; :func:`load` reads it back; :func:`digest` hashes a value without
keeping a file. Equal values give equal digests in any process, so a digest can key a cache.

Built-ins, by the first type that matches:

============  ==========================================  ===================================
name          takes                                        stored as
============  ==========================================  ===================================
``arrow``     ``pyarrow.Table``                            Parquet (no timestamps written)
``pandas``    ``pandas.DataFrame`` / ``Series``            Parquet, index and Series name kept
``numpy``     ``numpy.ndarray`` (not object dtype)         ``.npy`` without pickle
``model``     a model a safe flavor packages (sklearn,     a model package folder; loaded back
              xgboost, lightgbm, onnx, ...)                as the native estimator
``bytes``     ``bytes`` / ``bytearray``                    the bytes (loaded as ``bytes``)
``path``      a ``pathlib.Path`` to a file or folder       a copy; loaded as the copy's path
``json``      None, bool, int, float (NaN and infinities   canonical JSON; tuples come back as
              allowed), str, numpy scalars, and lists,     lists and numpy scalars as Python
              tuples and str-keyed dicts of those          numbers
``pickle``    anything else, only with ``allow_pickle``    a (cloud)pickle, loaded if trusted
============  ==========================================  ===================================

Digests are BLAKE3 over the stored bytes; a folder's digest is over its sorted ``relpath NUL
file digest`` lines. A model package is hashed through its manifest's file list, with a zip
file (skops writes one) hashed by its members' names and contents, since zip headers carry
the time they were written. A pickle's digest is of its bytes, which equal values need not
share (a set's order follows per-process string hashing): pickled values may miss the cache.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> stored = save({"a": [1, 2]}, Path(tempfile.mkdtemp()), "output", allow_pickle=False)
    >>> stored.materializer, stored.digest == digest({"a": (1, 2)})
    ('json', True)
    >>> load("json", stored.path, trusted=False)
    {'a': [1, 2]}
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blake3 import blake3

from ..errors import InvalidInput, NotFound
from ._formats import SUFFIX, from_file, is_json, to_bytes

__all__ = [
    "BUILTIN_MATERIALIZERS",
    "Stored",
    "digest",
    "digest_path",
    "load",
    "materializer_for",
    "register_materializer",
    "save",
    "unregister_materializer",
]

BUILTIN_MATERIALIZERS = ("arrow", "pandas", "numpy", "model", "bytes", "path", "json", "pickle")
_MANIFEST = "loopwright-model.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    """A value as :func:`save` wrote it: ``path`` is the file or folder under the folder given."""

    materializer: str
    digest: str
    type_name: str
    path: Path
    size: int


@dataclass(frozen=True)
class _UserMaterializer:
    type_: type
    name: str
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


_lock = threading.Lock()
_user: dict[str, _UserMaterializer] = {}


def register_materializer(
    type_: type,
    name: str,
    save: Callable[[Any, Path], None],
    load: Callable[[Path], Any],
) -> None:
    """Store values of ``type_`` (and its subclasses) with ``save(value, path)`` and read them
    back with ``load(path)``; asked before the built-ins.

    ``save`` writes one file or folder at exactly ``path`` (which does not exist yet). Register
    the materializer where the type is defined, so that every process loading the value
    (process and Ray workers, a resumed run) has it too.

    Raises:
        InvalidInput: ``name`` is a built-in's, or already registered for another type.
    """
    if not isinstance(type_, type):
        raise InvalidInput(f"register_materializer needs a type, not {type_!r}")
    if name in BUILTIN_MATERIALIZERS or not name.isidentifier():
        raise InvalidInput(
            f"materializer name {name!r} is a built-in's or not an identifier; choose another "
            f"(built-ins: {', '.join(BUILTIN_MATERIALIZERS)})"
        )
    with _lock:
        found = _user.get(name)
        if found is not None and found.type_ is not type_:
            raise InvalidInput(
                f"materializer {name!r} is already registered for {_type_name(found.type_)}; "
                "unregister it first or choose another name"
            )
        _user[name] = _UserMaterializer(type_, name, save, load)


def unregister_materializer(name: str) -> None:
    """Remove a materializer added by :func:`register_materializer`."""
    with _lock:
        if _user.pop(name, None) is None:
            raise NotFound(f"no materializer {name!r} was registered; nothing to remove")


def materializer_for(value: Any, *, allow_pickle: bool = False) -> str:
    """The name of the materializer :func:`save` would use for ``value``.

    Raises:
        InvalidInput: no materializer takes it and ``allow_pickle`` is false.
    """
    with _lock:
        users = list(_user.values())
    for user in users:
        if isinstance(value, user.type_):
            return user.name
    module = type(value).__module__.partition(".")[0]
    if module == "pyarrow" and _is_arrow_table(value):
        return "arrow"
    if module == "pandas" and _is_pandas(value):
        return "pandas"
    if module == "numpy" and _is_ndarray(value):
        if value.dtype.hasobject:
            return _pickle_or_refuse(value, allow_pickle, "an object-dtype array")
        return "numpy"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, Path):
        return "path"
    # JSON takes exact built-in types only, so asking it before the (slower) flavors changes
    # nothing: no model is a plain dict, list or number.
    if is_json(value):
        return "json"
    if _safe_model_flavor(value) is not None:
        return "model"
    return _pickle_or_refuse(value, allow_pickle, None)


def save(value: Any, folder: Path, name: str, *, allow_pickle: bool) -> Stored:
    """Write ``value`` under ``folder`` (made if missing) as ``name`` plus a suffix.

    Raises:
        InvalidInput: no materializer takes the value (the message names the type and the
            fix), or a ``path`` value does not exist.
    """
    kind = materializer_for(value, allow_pickle=allow_pickle)
    folder.mkdir(parents=True, exist_ok=True)
    user = _user.get(kind)
    if user is not None:
        target = folder / name
        user.save(value, target)
        if not target.exists():
            raise InvalidInput(
                f"materializer {kind!r} wrote nothing at {str(target)!r}; its save must write "
                "one file or folder at the path it is given"
            )
    elif kind == "model":
        target = folder / name
        from ..registry.packaging.package import save_model

        try:
            save_model(value, target, signature=None)
        except InvalidInput:
            if not allow_pickle:
                raise
            # The flavor cannot store this one (a lambda inside, say); the step opted in.
            shutil.rmtree(target, ignore_errors=True)
            kind, target = "pickle", folder / f"{name}{SUFFIX['pickle']}"
            target.write_bytes(to_bytes(kind, value))
    elif kind == "path":
        target = _save_path(value, folder / name)
    else:
        target = folder / f"{name}{SUFFIX[kind]}"
        target.write_bytes(to_bytes(kind, value))
    # A path's digest is its content's, as digest() gives it, not the wrapping folder's.
    hashed = next(target.iterdir()) if kind == "path" else target
    found = digest_path(hashed, model=kind == "model")
    return Stored(kind, found, _type_name(type(value)), target, _size(target))


def load(materializer: str, path: Path, *, trusted: bool) -> Any:
    """Read back what :func:`save` wrote at ``path`` with ``materializer``.

    A ``pickle`` is read only when ``trusted``; a ``model`` package that would unpickle or
    import code refuses without it, as the registry's loader does (``UntrustedModel``). A
    ``path`` value loads as the path of its copy.

    Raises:
        NotFound: the materializer is unknown here (a user one not registered in this process).
        UntrustedModel: see above.
    """
    path = Path(path)
    with _lock:
        user = _user.get(materializer)
    if user is not None:
        return user.load(path)
    if materializer == "model":
        from ..registry.packaging.package import load_package

        return load_package(path, trusted=trusted).raw
    if materializer == "path":
        entries = list(path.iterdir())
        if len(entries) != 1:
            raise InvalidInput(
                f"{str(path)!r} should hold the one file or folder a step returned, found "
                f"{len(entries)} entries; the stored output was altered"
            )
        return entries[0]
    if materializer == "pickle":
        from ..registry.packaging._safe_pickle import load_pickle

        return load_pickle(path, trusted=trusted)
    if materializer not in SUFFIX:
        raise NotFound(
            f"no materializer {materializer!r} in this process; built-ins: "
            f"{', '.join(BUILTIN_MATERIALIZERS)}. Import the module that calls "
            "register_materializer for it before loading"
        )
    return from_file(materializer, path)


def digest(value: Any, *, allow_pickle: bool = False) -> str:
    """The digest :func:`save` would give ``value``, computed in memory where that is cheap
    (JSON, Arrow, pandas, NumPy, bytes, a path's files); models and user materializers are
    written to a temporary folder first.

    Raises:
        InvalidInput: as :func:`save`.
    """
    kind = materializer_for(value, allow_pickle=allow_pickle)
    if kind in SUFFIX:
        return blake3(to_bytes(kind, value)).hexdigest()
    if kind == "path":
        source = Path(value)
        if not source.exists():
            raise InvalidInput(f"path {str(source)!r} does not exist; a step input must exist")
        return digest_path(source)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lw-digest-") as scratch:
        return save(value, Path(scratch), "value", allow_pickle=allow_pickle).digest


def digest_path(path: Path, *, model: bool = False) -> str:
    """BLAKE3 of a file's bytes, or of a folder's sorted ``relpath NUL file digest`` lines.

    With ``model``, the folder is a model package: its manifest is left out (it records
    library versions, not the model) and zip files are hashed by their members.
    """
    path = Path(path)
    if path.is_file():
        return _file_digest(path, by_member=model)
    lines = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for file_name in files:
            full = Path(folder, file_name)
            relative = full.relative_to(path).as_posix()
            if model and relative == _MANIFEST:
                continue
            lines.append(f"{relative}\0{_file_digest(full, by_member=model)}\n")
    return blake3("".join(sorted(lines)).encode()).hexdigest()


def _is_arrow_table(value: Any) -> bool:
    import pyarrow as pa

    return isinstance(value, pa.Table)


def _is_pandas(value: Any) -> bool:
    import pandas as pd

    return isinstance(value, (pd.DataFrame, pd.Series))


def _is_ndarray(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray)


def _safe_model_flavor(value: Any) -> str | None:
    """The flavor that packages ``value`` without pickle or packaged code, if one does.

    The ``pyfunc`` flavor (any object with ``predict``) is not used: its packages import code
    and load only when trusted, which a step's output should not need.
    """
    if isinstance(value, type):
        return None
    from ..registry.packaging.flavors import available_flavors, get_flavor

    for name in available_flavors():
        flavor = get_flavor(name)
        if flavor.uses_pickle or flavor.executes_code:
            continue
        if flavor.handles(value):
            return flavor.name
    return None


def _pickle_or_refuse(value: Any, allow_pickle: bool, what: str | None) -> str:
    if allow_pickle:
        return "pickle"
    described = what or f"a {_type_name(type(value))}"
    raise InvalidInput(
        f"no materializer stores {described} without pickle; register one with "
        "loopwright.pipelines.materializers.register_materializer(type, name, save, load), or let "
        "the step pickle it with @step(pickle=True) (loading it then needs trusted=True)"
    )


def _save_path(source: Path, target: Path) -> Path:
    if not source.exists():
        raise InvalidInput(
            f"the step returned path {str(source)!r}, which does not exist; return an existing "
            "file or folder"
        )
    target.mkdir()
    copy = target / (source.name or "root")
    if source.is_dir():
        shutil.copytree(source, copy, symlinks=False)
    else:
        shutil.copyfile(source, copy)
    return target


def _file_digest(path: Path, *, by_member: bool) -> str:
    if by_member and zipfile.is_zipfile(path):
        return _zip_digest(path)
    hasher = blake3()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _zip_digest(path: Path) -> str:
    """A zip's digest from its members, not its headers (which hold write times).

    skops names each array member after the ``id()`` of the array when it was saved and
    records ``__id__`` memo numbers, so both change from one process to the next: binary
    members are hashed by content alone, references to them in JSON members are replaced by
    those content digests, and ``__id__`` numbers by their order of first appearance.
    """
    texts: dict[str, bytes] = {}
    blobs: dict[str, str] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".json"):
                texts[info.filename] = archive.read(info)
                continue
            hasher = blake3()
            with archive.open(info) as member:  # streamed: arrays may be large
                while chunk := member.read(_CHUNK):
                    hasher.update(chunk)
            blobs[info.filename] = hasher.hexdigest()
    lines = sorted(f"blob\0{digest}\n" for digest in blobs.values())
    for name, data in sorted(texts.items()):
        try:
            document = _renumbered(json.loads(data), blobs, {})
            canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        except ValueError:
            canonical = data
        lines.append(f"{name}\0{blake3(canonical).hexdigest()}\n")
    return blake3("".join(lines).encode()).hexdigest()


def _renumbered(node: Any, blobs: dict[str, str], ids: dict[Any, int]) -> Any:
    if isinstance(node, list):
        return [_renumbered(item, blobs, ids) for item in node]
    if isinstance(node, dict):
        out = {}
        for key, item in node.items():
            if key == "__id__" and isinstance(item, int):
                out[key] = ids.setdefault(item, len(ids))
            else:
                out[key] = _renumbered(item, blobs, ids)
        return out
    if isinstance(node, str) and node in blobs:
        return blobs[node]
    return node


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(Path(folder, f).stat().st_size for folder, _, files in os.walk(path) for f in files)


def _type_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
