"""External versions: registered by source URI alone, as MLflow allows, and pinned later.

MLflow registers a version from any URI (a local path, ``s3://…``, ``runs:/…``) and stores the
run id unchecked. Loopwright records such a version with ``source_kind = "external"``: the
source and run id as given (a run id naming no stored run is kept in ``run_ref``), and no package,
flavor or hash. Nothing of it is trusted: loading and downloading refuse it, naming the fix.
:meth:`ExternalVersionsMixin.pin_source` fetches the files (a folder given, or the source where
it can be read, see ``_source_fetch``), checks them into a package (an MLflow folder is
converted; pickles stay marked, loadable only with ``trusted=True``) and attaches it; from then
on the version loads like any other. The audit log records who pinned which files.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import Conflict, InvalidInput, InvalidModelPackage
from ..store import artifact_trees as trees
from ..store import schema as t
from ..store.blobs import BlobStore
from ._base import check_model_name, check_tags, require_ready
from ._queries import load_versions, model_row, version_row
from ._run_folders import copy_run_folder, inside_run_folder
from ._source_fetch import fetch_source, stored_here
from ._sources import package_from_folder
from ._versions import VersionsMixin, store_package_rows
from .entities import ModelVersion
from .mlflow_sources import keep_pinned_folder, registered_through_mlflow
from .packaging._package_manifest import MANIFEST_FILE

__all__ = ["ExternalVersionsMixin"]

RUN_REF_WIDTH = 100  # model_versions.run_ref
EXTERNAL = "external"


class ExternalVersionsMixin(VersionsMixin):
    """Record versions whose files are elsewhere, and pin them into verified packages."""

    def _register_external(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None,
        description: str | None,
        tags: Mapping[str, str],
    ) -> ModelVersion:
        """A new version of ``name`` that only names ``source`` (MLflow's create-model-version
        of files not stored here); ``run_id`` need not name a stored run."""
        check_model_name(name)
        known, ref = self._split_run_id(run_id)
        return self._record_version(
            name,
            None,
            [],
            source=source,
            run_id=known,
            run_ref=ref,
            description=description,
            tags=check_tags(tags),
            metrics={},
            dataset_version_ids=[],
        )

    def _register_folder(
        self,
        name: str,
        package_dir: Path,
        *,
        run_id: str | None,
        source: str,
        description: str | None,
        tags: Mapping[str, str],
    ) -> ModelVersion:
        """``register(name, package_dir, run_id=...)``, except that ``run_id`` may name no
        stored run (MLflow stores it unchecked): then it is kept as given, without lineage."""
        known, ref = self._split_run_id(run_id)
        if ref is None:
            return self.register(
                name, package_dir, run_id=known, source=source, description=description, tags=tags
            )
        check_model_name(name)
        manifest, files = package_from_folder(self.store.blobs, package_dir)
        return self._record_version(
            name,
            manifest,
            files,
            source=source,
            run_id=None,
            run_ref=ref,
            description=description,
            tags=check_tags(tags),
            metrics={},
            dataset_version_ids=[],
        )

    def _split_run_id(self, run_id: str | None) -> tuple[str | None, str | None]:
        """``(run_id, None)`` for a stored run, ``(None, run_id)`` for any other id."""
        if not run_id:
            return None, None
        with self.db.read() as conn:
            found = conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first()
        if found is not None:
            return run_id, None
        if len(run_id) > RUN_REF_WIDTH:
            raise InvalidInput(
                f"run id {run_id[:40]!r}... has {len(run_id)} characters; at most "
                f"{RUN_REF_WIDTH} are kept for a run that is not stored here"
            )
        return None, run_id

    def pin_source(
        self,
        name: str,
        version: int,
        folder: str | os.PathLike[str] | None = None,
        *,
        trusted: bool = False,
    ) -> ModelVersion:
        """Fetch an external version's files (from ``folder``, else from its source), check
        them into a package and attach it: the version then loads like any other.

        An MLflow folder is converted; ``trusted=True`` unpickles its pickled model once to
        re-save it safely (only for files whose origin you trust). Files fetched from a source
        are capped by the ``max_upload_bytes`` setting; a ``folder`` given is not.
        """
        with self.db.read() as conn:
            row = version_row(conn, model_row(conn, name), version)
        self._require_external(row, name)
        if folder is not None:
            return self._pin_files(
                name, version, Path(folder), str(Path(folder).resolve()), trusted
            )
        with tempfile.TemporaryDirectory(prefix="lw-pin-") as tmp:
            files_dir = fetch_source(self.store, self, row.source or "", Path(tmp) / "source")
            return self._pin_files(name, version, files_dir, row.source, trusted)

    def _pin_files(
        self, name: str, version: int, files_dir: Path, origin: str, trusted: bool
    ) -> ModelVersion:
        """Check the files in ``files_dir`` into a package and attach it to the version."""
        with self.db.read() as conn:
            row = version_row(conn, model_row(conn, name), version)
            for_mlflow = registered_through_mlflow(conn, row.id)
        with tempfile.TemporaryDirectory(prefix="lw-pin-") as tmp:
            package_dir = _as_package(files_dir, Path(tmp) / "package", trusted=trusted)
            manifest, files = package_from_folder(self.store.blobs, package_dir)
            # The MLflow folder itself is stored only for a version its clients download.
            mlflow_files = _stored_mlflow_folder(self.store.blobs, files_dir) if for_mlflow else []
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            current = version_row(conn, model, version)
            self._require_external(current, name)  # pinned meanwhile
            now = self._now()
            store_package_rows(conn, current.id, files, now)
            keep_pinned_folder(conn, current.id, mlflow_files)
            signature = manifest.signature
            after: dict[str, Any] = {
                "source_kind": "package",
                "package_hash": files[0].blob_hash,
                "flavor": manifest.flavor,
                "pinned_from": origin,
                "trusted": trusted,
            }
            conn.execute(
                t.model_versions.update()
                .where(t.model_versions.c.id == current.id)
                .values(
                    source_kind="package",
                    flavor=manifest.flavor,
                    package_hash=files[0].blob_hash,
                    signature_json=None
                    if signature is None
                    else json.dumps(signature.to_dict(), sort_keys=True),
                    updated_at=now,
                )
            )
            self._audit(
                conn,
                "model_version.pin",
                "model_version",
                current.id,
                before={"source_kind": EXTERNAL, "source": current.source},
                after=after,
            )
            return load_versions(conn, [version_row(conn, model, version)])[0]

    def _pin_stored_source(self, name: str, version: int, *, trusted: bool) -> ModelVersion:
        """``pin_source`` for a server: only from a source stored here (a server never reads
        its own disk or a URL for a caller); other files are pinned where they can be read."""
        found = self.get_version(name, version)
        source = found.source or ""
        if stored_here(source):
            return self.pin_source(name, version, trusted=trusted)
        below = inside_run_folder(self.store, found.run_id, source)
        if below is None:
            raise InvalidInput(
                f"version {version} of model {name!r} names {source!r}, which this server does "
                "not store and will not fetch; pin it with the embedded store on a machine "
                "that can read it, or from a folder: pin_source(name, version, folder)"
            )
        self._require_external(self._row(name, version), name)
        assert found.run_id is not None
        with tempfile.TemporaryDirectory(prefix="lw-pin-") as tmp:
            files_dir = copy_run_folder(self.store, found.run_id, below, Path(tmp) / "files")
            return self._pin_files(name, version, files_dir, source, trusted)

    def _row(self, name: str, version: int) -> Any:
        with self.db.read() as conn:
            return version_row(conn, model_row(conn, name), version)

    @staticmethod
    def _require_external(row: Any, name: str) -> None:
        require_ready(row, name, "pinned")
        if row.source_kind != EXTERNAL:
            raise Conflict(
                f"version {row.version} of model {name!r} is already a verified package "
                f"({(row.package_hash or '')[:12]}); there is nothing to pin"
            )


def _stored_mlflow_folder(blobs: BlobStore, folder: Path) -> list[trees.FileRow]:
    """The files of ``folder`` stored as blobs if it is an MLflow model folder (else none)."""
    if not (folder / "MLmodel").is_file():
        return []
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        stored = blobs.put_file(path)
        found.append(trees.FileRow(path.relative_to(folder).as_posix(), stored.hash, stored.size))
    return found


def _as_package(folder: Path, dst: Path, *, trusted: bool) -> Path:
    """``folder`` if it is a Loopwright package, else the package converted from its MLflow
    model into ``dst``."""
    from .packaging.mlflow_import import convert_mlflow_model

    if (folder / MANIFEST_FILE).is_file():
        return folder
    if (folder / "MLmodel").is_file():
        convert_mlflow_model(folder, dst, trusted=trusted)
        return dst
    raise InvalidModelPackage(
        f"{str(folder)!r} holds neither a Loopwright package ({MANIFEST_FILE}) nor an MLflow "
        "model (MLmodel); pin the folder that save_model or mlflow.<flavor>.save_model wrote"
    )
