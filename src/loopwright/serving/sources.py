"""Where served models come from: model URIs resolved to pinned, verified package folders.

``serve`` resolves every URI once, before any worker starts: an alias or stage becomes the
version it points at (so all worker processes serve the same version even if the alias moves
meanwhile), and the package is downloaded into the home's model cache. Workers then load the
cached folder through the registry's loader, which verifies every file's hash and refuses
packages that would unpickle or run code unless the source is ``trusted``.

Accepted forms: ``models:/churn@champion``, ``models:/churn/3``, ``models:/churn/Production``,
``runs:/<run id>/model``, a package folder; any of them may be prefixed with ``NAME=`` to serve
it under another name (``fraud=./build/model``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IntegrityError, InvalidInput

if TYPE_CHECKING:
    from ..client import Client
    from .model import ServedModel

__all__ = ["ModelSource", "load_source", "resolve_source"]

# The model version tag naming the feature service it was trained on (registry/_versions.py).
FEATURE_SERVICE_TAG = "loopwright.feature_service"
# NAME=URI: a name of letters, digits, '.', '_' and '-' (so a path holding '=' stays a path).
_RENAMED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<uri>.+)$")


@dataclass(frozen=True)
class ModelSource:
    """One model to serve, resolved: what it is called and the package folder to load.

    Attributes:
        name: the name requests use (``/v2/models/<name>``).
        uri: what the user asked for (kept for messages and the repository index).
        version: the registry version, ``None`` for a folder or a run's package.
        folder: the package folder (in the model cache for registry and run URIs).
        package_hash: the manifest hash the registry holds, checked again on load.
        trusted: whether loading may unpickle or run the package's code.
        feature_service: the feature service (``svc@vN``) the version was trained on (its
            ``loopwright.feature_service`` tag): requests may then carry only entity keys.
    """

    name: str
    uri: str
    version: int | None
    folder: str
    package_hash: str | None = None
    trusted: bool = False
    feature_service: str | None = None


def resolve_source(spec: str, client: Client | None, *, trusted: bool = False) -> ModelSource:
    """Resolve ``spec`` (``[NAME=]URI``) to a pinned version and a local package folder.

    Raises:
        InvalidInput: a malformed URI or name, or a registry URI without a client.
        NotFound: no such model, version, alias, run or folder.
    """
    from ..registry.loading import ModelUri, fetch_package, parse_model_uri

    renamed = _RENAMED.match(spec) if not Path(spec).exists() else None
    name, uri = (renamed["name"], renamed["uri"]) if renamed else (None, spec)
    parsed = parse_model_uri(uri)
    if parsed.kind == "path":
        assert parsed.path is not None
        folder = Path(parsed.path).resolve()
        if not folder.is_dir():
            from ..errors import NotFound

            raise NotFound(f"model folder {parsed.path!r} does not exist")
        return ModelSource(_named(name or folder.name, uri), uri, None, str(folder), None, trusted)
    if client is None:
        raise InvalidInput(f"serving {uri} needs a store or server to resolve it")
    if parsed.kind == "models":
        assert parsed.name is not None and parsed.ref is not None
        version = client.registry.resolve(parsed.name, parsed.ref)
        pinned = ModelUri("models", name=parsed.name, ref=str(version.version))
        folder, package_hash = fetch_package(client, pinned)
        return ModelSource(
            _named(name or parsed.name, uri),
            uri,
            version.version,
            str(folder),
            package_hash,
            trusted,
            version.tags.get(FEATURE_SERVICE_TAG),
        )
    assert parsed.path is not None
    folder, package_hash = fetch_package(client, parsed)
    default = parsed.path.rsplit("/", 1)[-1]
    return ModelSource(_named(name or default, uri), uri, None, str(folder), package_hash, trusted)


def load_source(source: ModelSource) -> ServedModel:
    """Load ``source`` through the registry's verifying loader.

    Raises:
        IntegrityError: a file does not match the manifest, or the manifest not the registry.
        UntrustedModel: the package unpickles or runs code and ``source.trusted`` is false.
    """
    from ..registry.loading import load_model
    from .model import ServedModel

    loaded = load_model(source.folder, trusted=source.trusted)
    if source.package_hash is not None and loaded.manifest.hash != source.package_hash:
        raise IntegrityError(
            f"the cached package of {source.uri} ({source.folder}) does not match the registry "
            f"(expected {source.package_hash[:12]}, found {loaded.manifest.hash[:12]}); "
            "delete the folder and serve again"
        )
    loaded.metadata["uri"] = source.uri
    return ServedModel(source.name, source.version, source.uri, loaded)


def _named(name: str, uri: str) -> str:
    # The name is one URL path segment (/v2/models/<name>/infer); registry names may hold
    # spaces or accents, which clients percent-encode.
    if not name or "/" in name or not name.isprintable() or name != name.strip():
        raise InvalidInput(
            f"{name!r} (from {uri}) cannot name a served model: it must be printable, without "
            "'/' or edge spaces; serve it under another name as NAME=URI"
        )
    return name
