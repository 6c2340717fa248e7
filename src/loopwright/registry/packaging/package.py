"""Model packages: a folder with the model's files and a manifest that hashes every one.

:func:`save_model` writes a package with the flavor that handles the model, :func:`verify_package`
checks every file against the manifest, and :func:`load_package` verifies, refuses packages that
would unpickle data or import packaged code unless ``trusted=True``, and returns a
:class:`~loopwright.registry.LoadedModel` whose ``predict`` checks the signature first.

Example:
    >>> from sklearn.linear_model import LinearRegression
    >>> model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
    >>> manifest = save_model(model, "doc-linear", input_example=[[3.0]])
    >>> manifest.flavor, sorted(manifest.files)
    ('sklearn', ['input_example.json', 'model.skops'])
    >>> load_package("doc-linear").predict([[4.0]])
    array([8.])
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ...errors import IntegrityError, InvalidInput, NotFound
from ._examples import EXAMPLE_FILE, dump_example
from ._package_manifest import MANIFEST_FILE as MANIFEST_FILE
from ._package_manifest import MAX_MANIFEST_BYTES
from ._package_manifest import FileEntry as FileEntry
from ._package_manifest import PackageManifest as PackageManifest
from ._trust import UntrustedModel as UntrustedModel
from ._trust import untrusted
from ._writer import PackageContent, hash_file, write_package
from .flavors import Flavor, flavor_for, get_flavor
from .loaded import LoadedModel as LoadedModel
from .signature import Signature, infer_signature

__all__ = [
    "MANIFEST_FILE",
    "FileEntry",
    "LoadedModel",
    "PackageManifest",
    "UntrustedModel",
    "load_package",
    "read_manifest",
    "save_model",
    "verify_package",
]

_CODE_DIR = "code"
_IGNORED_CODE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git")


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    signature: Signature | Literal["infer"] | None = "infer",
    input_example: Any = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    pip_requirements: Sequence[str] | None = None,
) -> PackageManifest:
    """Write ``model`` as a package into the new (or empty) folder ``path``.

    Args:
        model: the model; the first flavor that handles it stores it, unless ``flavor`` is given.
        path: the package folder. It must not exist, or be empty.
        flavor: the name of the flavor to use.
        signature: a :class:`Signature`; ``"infer"`` (the default) infers it from
            ``input_example`` and the model's prediction on it, or takes the one the model
            declares (ONNX); ``None`` stores none.
        input_example: a few rows of input, stored as ``input_example.json``.
        code_paths: source files or folders copied under ``code/``. The ``pyfunc`` flavor
            imports them when loading; other flavors only carry them.
        pip_requirements: requirement lines stored as ``requirements.txt``.

    Returns:
        The manifest written; ``manifest.hash`` identifies the package.

    Raises:
        AlreadyExists: ``path`` holds something already.
        InvalidInput: no flavor handles the model, or the example does not fit the signature.
    """
    chosen = get_flavor(flavor) if flavor is not None else flavor_for(model)

    def build(folder: Path) -> PackageContent:
        for source in code_paths or ():
            _copy_code(Path(source), folder / _CODE_DIR)
        options = chosen.save(model, folder)
        found = _signature(chosen, model, signature, input_example)
        example_file = None
        if input_example is not None:
            (folder / EXAMPLE_FILE).write_bytes(dump_example(input_example))
            example_file = EXAMPLE_FILE
        if pip_requirements:
            text = "".join(f"{line.strip()}\n" for line in pip_requirements)
            (folder / "requirements.txt").write_text(text, encoding="utf-8")
        from ... import __version__

        return PackageContent(
            flavor=chosen.name,
            flavor_options=options,
            signature=found,
            input_example=example_file,
            libraries={**chosen.libraries(), "loopwright": __version__},
            uses_pickle=chosen.uses_pickle,
            executes_code=chosen.executes_code,
        )

    return write_package(path, build)


def read_manifest(path: str | os.PathLike[str]) -> PackageManifest:
    """The manifest of the package folder ``path`` (checked, files not verified).

    Raises:
        NotFound: the folder holds no ``loopwright-model.json``.
        InvalidModelPackage: the manifest is malformed.
    """
    manifest_path = Path(path) / MANIFEST_FILE
    where = f"package {str(path)!r}"
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise NotFound(
            f"{str(path)!r} is not a Loopwright model package: it has no {MANIFEST_FILE}. "
            "Save one with save_model, or import an MLflow model with convert_mlflow_model"
        )
    with open(manifest_path, "rb") as file:
        # Read one byte past the limit, so that from_json reports an oversized manifest.
        return PackageManifest.from_json(file.read(MAX_MANIFEST_BYTES + 1), where=where)


def verify_package(path: str | os.PathLike[str]) -> PackageManifest:
    """Check that the folder holds exactly the files its manifest lists, byte for byte.

    Raises:
        IntegrityError: naming the first file that is missing, changed, unlisted, a symbolic
            link or a special file.
    """
    root = Path(path)
    manifest = read_manifest(root)
    where = f"model package {str(root)!r}"
    for relative, entry in sorted(manifest.files.items()):
        full = root / relative  # the manifest reader checked every path
        if full.is_symlink() or not full.is_file():
            raise IntegrityError(
                f"{where}: file {relative!r} is missing or not a regular file; the package is "
                "incomplete, so fetch or save it again"
            )
        found = hash_file(full)
        if found != entry:
            raise IntegrityError(
                f"{where}: file {relative!r} does not match the manifest (expected "
                f"{entry.size} bytes with BLAKE3 {entry.hash[:12]}..., found {found.size} bytes "
                f"with {found.hash[:12]}...); the package was altered or damaged, so fetch or "
                "save it again"
            )
    listed_dirs = {parent.as_posix() for rel in manifest.files for parent in Path(rel).parents}
    for folder, dirs, names in os.walk(root):
        for name in sorted(dirs + names):
            full = Path(folder, name)
            relative = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise IntegrityError(f"{where}: {relative!r} is a symbolic link; remove it")
            expected = relative in listed_dirs if full.is_dir() else relative in manifest.files
            if not expected and relative != MANIFEST_FILE:
                raise IntegrityError(
                    f"{where}: {relative!r} is not listed in the manifest; something was added "
                    "to the package, so remove it or fetch the package again"
                )
    return manifest


def load_package(path: str | os.PathLike[str], *, trusted: bool = False) -> LoadedModel:
    """Verify the package at ``path`` and load its model.

    Args:
        path: the package folder.
        trusted: allow packages that unpickle data or import code they ship. Loading those
            runs whatever their author chose: pass it only for packages you trust.

    The files are verified, then read: keep packages in folders only you can write to, since
    a file swapped between the two steps would go unnoticed.

    Raises:
        IntegrityError: a file does not match the manifest (see :func:`verify_package`).
        UntrustedModel: the package needs ``trusted=True`` (a ``PermissionDenied``).
        NotFound: the package's flavor is not installed.
    """
    manifest = verify_package(path)
    flavor = get_flavor(manifest.flavor)
    if not trusted and (manifest.needs_trust or flavor.uses_pickle or flavor.executes_code):
        risks = [
            label
            for label, flag in (
                ("unpickles data", manifest.uses_pickle or flavor.uses_pickle),
                ("imports Python code it ships", manifest.executes_code or flavor.executes_code),
            )
            if flag
        ]
        raise untrusted(
            f"model package {str(path)!r} (flavor {manifest.flavor})",
            " and ".join(risks),
            alternative=_safer(manifest),
        )
    native = flavor.load(Path(path), manifest.flavor_options, trusted=trusted)
    return LoadedModel(manifest, flavor, native, Path(path))


def _safer(manifest: PackageManifest) -> str:
    if manifest.flavor == "sklearn":
        return "convert it once with convert_mlflow_model(..., trusted=True), which stores skops"
    return ""


def _signature(
    flavor: Flavor, model: Any, signature: Signature | str | None, example: Any
) -> Signature | None:
    if isinstance(signature, Signature):
        if example is not None:
            signature.validate(example, what="the model (checking the input example)")
        return signature
    if signature is None:
        return None
    if signature != "infer":
        raise InvalidInput(f"signature must be a Signature, 'infer' or None, not {signature!r}")
    if example is None:
        return flavor.signature(model)
    try:
        output = flavor.predict(model, example)
    except Exception as exc:
        raise InvalidInput(
            f"the model's predict failed on the input example ({type(exc).__name__}: {exc}); "
            "fix the example, or pass signature=None or an explicit Signature"
        ) from exc
    return infer_signature(example, output)


def _copy_code(source: Path, code: Path) -> None:
    if not source.exists():
        raise InvalidInput(f"code path {str(source)!r} does not exist")
    target = code / source.name
    if target.exists():
        raise InvalidInput(f"two code paths are named {source.name!r}; rename one")
    code.mkdir(exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=_IGNORED_CODE)
    else:
        shutil.copyfile(source, target)
