"""``RemoteDatasets``: dataset versions over the server's REST API (a subset of
:class:`~loopwright.data.service.DatasetService`: find versions, list and fetch their files,
add versions from local files).

Files travel as content-addressed blobs: ``add`` uploads only the blobs the server lacks, then
records the version from their manifest; ``download`` fetches a version's files, each verified
against its hash.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.entities import Dataset, DatasetVersion, FileEntry
from ..data.ingest import collect_files
from ..errors import InvalidInput
from ..paths import safe_join
from . import _codec
from ._http import Http, hash_file, quote_path

if TYPE_CHECKING:
    from ._store import RemoteStore

__all__ = ["RemoteDatasets", "RemoteValidationResult"]


class RemoteDatasets:
    """Dataset versions on a Loopwright server."""

    def __init__(self, http: Http, store: RemoteStore) -> None:
        self._http = http
        self.store = store

    def close(self) -> None:
        """Nothing to release (the client's session is closed with the client)."""

    def __getattr__(self, name: str) -> Any:
        # DatasetService methods not offered over HTTP yet get a clear error, not a bare
        # AttributeError (e.g. `loopwright --server URL data checkout`).
        from ..data.service import DatasetService

        if not name.startswith("_") and hasattr(DatasetService, name):
            from ._store import NotOnRemote

            raise NotOnRemote(
                f"datasets.{name} is not available through a server yet; run it on the "
                "server's store (without --server / LOOPWRIGHT_SERVER_URI)"
            )
        raise AttributeError(name)

    # --- finding ---------------------------------------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        return [_codec.dataset(d) for d in self._http.get("/datasets")]

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        found = self._http.get(f"/datasets/{quote_path(name)}/versions")
        return [_codec.dataset_version(v) for v in found]

    def get(self, ref: str) -> DatasetVersion:
        """A version by reference: ``name``, ``name@v3``, ``name@<alias>``, ``name@<id>``."""
        name, _, selector = ref.partition("@")
        url = f"/datasets/{quote_path(name)}/versions/{quote_path(selector or 'latest')}"
        return _codec.dataset_version(self._http.get(url))

    def get_by_id(self, version_id: str) -> DatasetVersion:
        return _codec.dataset_version(self._http.get(f"/dataset-versions/{version_id}"))

    def validate(
        self, ref: str | DatasetVersion, suite: Any, *, files: str | None = None
    ) -> RemoteValidationResult:
        """Check a version against a suite (a ``Suite`` or a YAML file) on the server."""
        from ..data.validation import Suite

        version = ref if isinstance(ref, DatasetVersion) else self.get(ref)
        if not isinstance(suite, Suite):
            if isinstance(suite, str) and not suite.endswith((".yaml", ".yml")):
                raise InvalidInput(
                    "a remote client validates with a Suite or a YAML file, not a stored "
                    f"suite name ({suite!r})"
                )
            suite = Suite.from_yaml(suite)
        body = {"suite": suite.to_dict(), "files": files}
        found = self._http.post(f"/dataset-versions/{version.id}/validate", body)
        return RemoteValidationResult(
            found["suite"],
            found["suite_version"],
            found["success"],
            found["statistics"],
            found["results"],
        )

    def runs_using(self, version: DatasetVersion) -> list[str]:
        """Ids of the runs that recorded ``version`` as an input."""
        return list(self._http.get(f"/dataset-versions/{version.id}/runs"))

    def validation_results(self, version: DatasetVersion) -> list[dict[str, Any]]:
        return list(self._http.get(f"/dataset-versions/{version.id}/validations"))

    def files(self, version: DatasetVersion) -> list[FileEntry]:
        """The version's manifest: path, size and BLAKE3 hash of every file, by path."""
        found = self._http.get(f"/dataset-versions/{version.id}/files")
        return [_codec.file_entry(f) for f in found]

    def download(self, version: DatasetVersion, dst: str | os.PathLike[str]) -> Path:
        """Write the version's files into folder ``dst``, each verified; returns ``dst``."""
        target = Path(dst)
        for entry in self.files(version):
            dest = safe_join(target, entry.path, what="dataset path")
            self._http.download(f"/blobs/{entry.hash}", dest, entry.hash)
        target.mkdir(parents=True, exist_ok=True)
        return target

    # --- adding ----------------------------------------------------------------------------

    def add(
        self,
        name: str,
        source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        message: str | None = None,
        tags: Mapping[str, str] | None = None,
        aliases: Sequence[str] = (),
        run_id: str | None = None,
    ) -> DatasetVersion:
        """A new version of ``name`` from local files, folders or globs, named as embedded (one
        folder: its contents at the root). Identical content gives back the existing version;
        only blobs the server lacks are uploaded."""
        sources = [source] if isinstance(source, str | os.PathLike) else list(source)
        if any("://" in os.fspath(s) for s in sources):
            raise InvalidInput(
                "over a server, add local files or folders; URLs need the embedded store"
            )
        entries = []
        for rel, path in collect_files(sources):
            digest = hash_file(path)
            entries.append({"path": rel, "size": os.path.getsize(path), "hash": digest})
            if not self._http.exists(f"/blobs/{digest}"):
                self._http.upload(f"/blobs/{digest}", path)
        body = {
            "files": entries,
            "message": message,
            "tags": dict(tags or {}),
            "aliases": list(aliases),
            "run_id": run_id,
        }
        return _codec.dataset_version(
            self._http.post(f"/datasets/{quote_path(name)}/versions", body)
        )


@dataclass(frozen=True)
class RemoteValidationResult:
    """A validation result as the server reports it (``ValidationResult.to_dict()``'s fields)."""

    suite: str
    suite_version: int | None
    success: bool
    statistics: Mapping[str, int]
    results: Sequence[Mapping[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "suite_version": self.suite_version,
            "success": self.success,
            "statistics": dict(self.statistics),
            "results": [dict(r) for r in self.results],
        }
