"""Loading a model by URI: ``models:/churn@champion``, ``models:/churn/3``, ``runs:/<id>/model``.

A package is fetched once into the home's model cache (``<home>/cache/models/<package hash>``),
keyed by the hash of its manifest, and every file's hash is checked again on each load.

URIs:

- ``models:/<name>/<version>``: one version (``latest`` for the newest);
- ``models:/<name>@<alias>``: the version an alias points at;
- ``models:/<name>/<stage>``: the newest version in a stage (``Staging``, ``Production``);
- ``runs:/<run id>/<path>``: a package logged by ``run.log_model`` under ``path``;
- a local folder holding a package.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IntegrityError, InvalidInput, NotFound, UnverifiedSource
from ..paths import normalize_relpath

if TYPE_CHECKING:
    from ..client import Client
    from .packaging.loaded import LoadedModel

__all__ = ["ModelUri", "load_model", "parse_model_uri"]

_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<ref>[^/@]+))$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})/(?P<path>.+)$")


@dataclass(frozen=True)
class ModelUri:
    """A parsed model URI: ``kind`` is ``models``, ``runs`` or ``path``."""

    kind: str
    name: str | None = None
    # A version number, a stage, "latest", an alias, or "@<alias>" (models:/name@alias: an alias
    # even when it is named like a stage), as Registry.resolve takes it.
    ref: str | None = None
    run_id: str | None = None
    path: str | None = None


def parse_model_uri(uri: str) -> ModelUri:
    """Split a model URI into its parts, or say which forms are accepted.

    Example:
        >>> parse_model_uri("models:/churn@champion")
        ModelUri(kind='models', name='churn', ref='@champion', run_id=None, path=None)
        >>> parse_model_uri("models:/churn/3").ref
        '3'
    """
    if uri.startswith("models:"):
        match = _MODELS.match(uri)
        if match is None:
            raise InvalidInput(
                f"model URI {uri!r} is malformed; use models:/<name>/<version>, "
                "models:/<name>@<alias> or models:/<name>/<stage>"
            )
        alias = match["alias"]
        return ModelUri("models", name=match["name"], ref=match["ref"] or f"@{alias}")
    if uri.startswith("runs:"):
        match = _RUNS.match(uri)
        if match is None:
            raise InvalidInput(
                f"run model URI {uri!r} is malformed; use runs:/<32-hex run id>/<artifact path>"
            )
        path = normalize_relpath(match["path"], what="artifact path in the model URI")
        return ModelUri("runs", run_id=match["run"], path=path)
    if "://" in uri or uri.startswith(("models:", "runs:")):
        raise InvalidInput(
            f"model URI {uri!r} has an unknown scheme; use models:/, runs:/ or a local folder"
        )
    return ModelUri("path", path=uri)


def load_model(uri: str, *, trusted: bool = False, client: Client | None = None) -> LoadedModel:
    """Load a model package by URI; ``predict`` checks its input against the signature.

    Args:
        uri: see the module documentation for the accepted forms.
        trusted: allow packages that unpickle data or run packaged code. Only pass it for
            packages whose origin you trust: unpickling can run arbitrary code.
        client: the client to resolve ``models:/`` and ``runs:/`` with; needed for those
            URIs (``lw.load_model`` passes the default client, since the registry sits below
            the client layer and does not make one).

    Raises:
        NotFound: no such model, version, alias, run or artifact path.
        IntegrityError: a file of the package does not match the manifest.
        PermissionDenied: the package needs ``trusted=True``.
    """
    from .packaging.package import load_package

    parsed = parse_model_uri(uri)
    if parsed.kind == "path":
        assert parsed.path is not None
        folder = Path(parsed.path)
        if not folder.is_dir():
            raise NotFound(f"model folder {str(folder)!r} does not exist")
        return load_package(folder, trusted=trusted)
    if client is None:
        raise InvalidInput(
            f"loading {uri} needs a client to resolve it: pass client=, or call "
            "lw.load_model (the default client) or Client.load_model"
        )
    folder, package_hash = fetch_package(client, parsed)
    loaded = load_package(folder, trusted=trusted)
    if loaded.manifest.hash != package_hash:
        raise IntegrityError(
            f"the cached package of {uri} ({folder}) has a manifest that does not match the "
            f"registry (expected {package_hash[:12]}, found {loaded.manifest.hash[:12]}); "
            "delete the folder and load again"
        )
    loaded.metadata["uri"] = uri
    return loaded


def fetch_package(client: Client, parsed: ModelUri) -> tuple[Path, str]:
    """The cached folder of the package ``parsed`` names (downloaded on first use), its hash."""
    from .packaging.package import MANIFEST_FILE

    if parsed.kind == "models":
        assert parsed.name is not None and parsed.ref is not None
        version = client.registry.resolve(parsed.name, parsed.ref)
        if version.external:
            raise UnverifiedSource.of(version.model, version.version, version.source, "loaded")
        package_hash = version.package_hash
        if package_hash is None:
            raise NotFound(f"model {version.ref} has no package")

        def download(dst: Path) -> None:
            client.registry.download_package(version, dst)

    else:
        assert parsed.run_id is not None and parsed.path is not None
        run_id, path = parsed.run_id, parsed.path
        entries = {a.path: a for a in client.tracking.list_artifacts(run_id, path)}
        manifest = entries.get(f"{path}/{MANIFEST_FILE}")
        if manifest is None:
            raise NotFound(
                f"run {run_id} has no model package at {path!r} (no {MANIFEST_FILE}); "
                "log one with run.log_model(model, name=...)"
            )
        package_hash = manifest.blob_hash

        def download(dst: Path) -> None:
            client.tracking.download_artifacts(run_id, dst, path)
            # download_artifacts keeps the artifact path; the package is the folder below it.
            inner = dst / path
            for item in inner.iterdir():
                item.rename(dst / item.name)
            shutil.rmtree(dst / path.split("/", 1)[0])

    cache = client.settings.home / "cache" / "models"
    return _cached(cache, package_hash, download), package_hash


def _cached(cache: Path, package_hash: str, download: Callable[[Path], None]) -> Path:
    """``cache/<hash>``; filled through a temporary folder and a rename, so never half-written."""
    target = cache / package_hash
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{package_hash[:12]}-", dir=cache))
    try:
        download(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent loader that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
