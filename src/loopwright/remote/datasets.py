"""``RemoteDatasets``: dataset versions over the server's REST API (the ``Datasets`` protocol,
as :class:`~loopwright.data.service.DatasetService` implements it on the stores).

Files travel as content-addressed blobs: ``add`` uploads only the blobs the server lacks, then
records the version from their manifest; ``download`` fetches a version's files, each verified
against its hash.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.entities import Dataset, DatasetVersion, FileEntry
from ..data.ingest import collect_files
from ..errors import InvalidInput, NotFound
from ..paths import normalize_relpath, safe_join
from . import _codec
from ._http import Http, hash_file, quote_path

if TYPE_CHECKING:
    from ..data.pointer import Pointer
    from ..data.validation import ValidationResult
    from ._store import RemoteSession

__all__ = ["RemoteDatasets"]


class RemoteDatasets:
    """Dataset versions on a Loopwright server."""

    def __init__(self, http: Http, session: RemoteSession) -> None:
        self._http = http
        self._session = session

    def close(self) -> None:
        """Nothing to release (the client's session is closed with the client)."""

    def __getattr__(self, name: str) -> Any:
        # What DatasetService does on a local store only (the stat cache, store-to-store
        # sync) gets a clear error, not a bare AttributeError.
        from ..data.service import DatasetService

        if not name.startswith("_") and hasattr(DatasetService, name):
            from ._store import NotOnRemote

            raise NotOnRemote(
                f"datasets.{name} works on a local store and is not available through a "
                "server; run it on the server's store (without --server / "
                "LOOPWRIGHT_SERVER_URI)"
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
        self, ref: str | DatasetVersion, suite: Any, *, files: str | None = None, save: bool = True
    ) -> ValidationResult:
        """Check a version against a suite (a ``Suite``, a YAML file, or the name of a suite
        stored on the server: ``name`` or ``name@3``) where the data lives."""
        from ..data.validation import Suite

        version = ref if isinstance(ref, DatasetVersion) else self.get(ref)
        body: dict[str, Any] = {"files": files, "save": save}
        if isinstance(suite, Suite):
            body["suite"] = suite.to_dict()
        elif isinstance(suite, str) and not (
            Path(suite).is_file() or suite.endswith((".yaml", ".yml"))
        ):
            body["suite_name"] = suite
        else:
            body["suite"] = Suite.from_yaml(suite).to_dict()
        found = self._http.post(f"/dataset-versions/{version.id}/validate", body)
        return _codec.validation_result(found)

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

    def resolve_pointer(self, pointer: Pointer) -> DatasetVersion:
        """The version a pointer file names: by id, else by content (another store's id); a
        version found by id must hold the pointer's dataset and content."""
        try:
            found: DatasetVersion | None = self.get_by_id(pointer.id)
        except NotFound:
            found = self._find_by_content(pointer.dataset, pointer.content_hash)
        else:
            assert found is not None
            if (found.dataset, found.content_hash) != (pointer.dataset, pointer.content_hash):
                raise InvalidInput(
                    f"the pointer names version {pointer.id} as {pointer.dataset!r} with content "
                    f"{pointer.content_hash[:12]}, but the server's version with that id differs; "
                    "the pointer was edited: restore it from Git"
                )
        if found is None:
            raise NotFound(
                f"the server has no version {pointer.dataset}@v{pointer.version} "
                f"({pointer.id}); add it there with `loopwright --server URL data add`"
            )
        return found

    def _find_by_content(self, name: str, content_hash: str) -> DatasetVersion | None:
        try:
            versions = self.versions(name)
        except NotFound:
            return None
        return next((v for v in versions if v.content_hash == content_hash), None)

    # --- labels ----------------------------------------------------------------------------

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        """Point ``alias`` (e.g. ``golden``) at the version ``ref``; moves it if it existed."""
        version = self.get(ref)
        url = f"/datasets/{quote_path(version.dataset)}/aliases/{quote_path(alias)}"
        return _codec.dataset_version(
            self._http.request("PUT", url, json_body={"version_id": version.id})
        )

    def tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        """Set tag ``key`` on the version ``ref``."""
        version = self.get(ref)
        url = f"/dataset-versions/{version.id}/tags/{quote_path(key)}"
        return _codec.dataset_version(self._http.request("PUT", url, json_body={"value": value}))

    def describe(self, name: str, description: str) -> None:
        """Set the description of dataset ``name``."""
        self._http.request(
            "PATCH", f"/datasets/{quote_path(name)}", json_body={"description": description}
        )

    def create_empty(self, name: str) -> None:
        """Register a dataset name with no version yet."""
        self._http.post("/datasets", {"name": name})

    # --- adding ----------------------------------------------------------------------------

    def add(
        self,
        name: str,
        source: Any,
        *,
        message: str | None = None,
        tags: Mapping[str, str] | None = None,
        aliases: Sequence[str] = (),
        run_id: str | None = None,
        table_name: str = "data.parquet",
        progress: Callable[[int], None] | None = None,
    ) -> DatasetVersion:
        """A new version of ``name`` from local files, folders, globs or a table (pandas/Arrow,
        sent as the Parquet file ``table_name``), named as embedded (one folder: its contents at
        the root). Identical content gives back the existing version; only blobs the server
        lacks are uploaded. ``progress`` is called with the number of files done (not for a
        table)."""
        labels: dict[str, Any] = {
            "message": message,
            "tags": dict(tags or {}),
            "aliases": list(aliases),
            "run_id": run_id,
        }
        if isinstance(source, str | os.PathLike) or (
            isinstance(source, Sequence) and not isinstance(source, str | bytes)
        ):
            sources = [source] if isinstance(source, str | os.PathLike) else list(source)
            if any("://" in os.fspath(s) for s in sources):
                raise InvalidInput(
                    "over a server, add local files or folders; URLs need the embedded store"
                )
            return self._add_files(name, collect_files(sources), labels, progress)
        with tempfile.TemporaryDirectory(prefix="lw-table-") as tmp:
            path = Path(tmp) / "table.parquet"
            _write_parquet(source, path)
            rel = normalize_relpath(table_name, what="dataset path")
            return self._add_files(name, [(rel, str(path))], labels, None)  # as embedded

    def _add_files(
        self,
        name: str,
        files: Sequence[tuple[str, str]],
        labels: dict[str, Any],
        progress: Callable[[int], None] | None,
    ) -> DatasetVersion:
        entries = []
        for rel, path in files:
            digest = hash_file(path)
            entries.append({"path": rel, "size": os.path.getsize(path), "hash": digest})
            if not self._http.exists(f"/blobs/{digest}"):
                self._http.upload(f"/blobs/{digest}", path)
            if progress is not None:
                progress(1)
        body = {"files": entries, **labels}
        return _codec.dataset_version(
            self._http.post(f"/datasets/{quote_path(name)}/versions", body)
        )


def _write_parquet(table: Any, path: Path) -> None:
    """A pandas DataFrame or Arrow table as one Parquet file (as the embedded ``add`` stores it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(table, path)
