"""Run artifacts: files stored as blobs under a run (part of the tracking service)."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from .._ids import now_ms
from ..errors import InvalidInput, NotFound
from ..paths import normalize_relpath, safe_join
from ..store import schema as t
from ..store.upsert import insert_ignore, upsert
from ._base import ServiceBase
from .artifact_locations import copy_to_location, run_location
from .entities import Artifact

__all__ = ["ArtifactsMixin", "artifact_file", "artifact_files"]


def artifact_file(
    local_path: str | os.PathLike[str], artifact_path: str | None
) -> tuple[str, Path]:
    """``(artifact name, local file)`` for one file logged under ``artifact_path``."""
    source = Path(local_path)
    if not source.is_file():
        raise InvalidInput(
            f"artifact {str(source)!r} is not a file; pass a file (log_artifacts takes a folder)"
        )
    name = f"{artifact_path.rstrip('/')}/{source.name}" if artifact_path else source.name
    return normalize_relpath(name, what="artifact path"), source


def artifact_files(
    local_dir: str | os.PathLike[str], artifact_path: str | None
) -> list[tuple[str, Path]]:
    """``(artifact name, local file)`` for every file below ``local_dir``, sorted by path."""
    root = Path(local_dir)
    if not root.is_dir():
        raise InvalidInput(f"{str(root)!r} is not a folder; log_artifact takes a single file")
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        name = f"{artifact_path.rstrip('/')}/{rel}" if artifact_path else rel
        files.append((normalize_relpath(name, what="artifact path"), path))
    return files


class ArtifactsMixin(ServiceBase):
    """Log, list and download a run's files; every path goes through the path resolver."""

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        """Store one file under the run's artifacts at ``artifact_path/<file name>``."""
        return self._store_artifacts(run_id, [artifact_file(local_path, artifact_path)])[0]

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store every file below ``local_dir``, keeping the folder structure."""
        return self._store_artifacts(run_id, artifact_files(local_dir, artifact_path))

    def _store_artifacts(self, run_id: str, files: list[tuple[str, Path]]) -> list[Artifact]:
        with self.db.read() as conn:  # one read for both
            self._require_active(conn, run_id)
            location = run_location(conn, run_id)
        copy_to_location(self.store, location, run_id, files)  # an experiment's own local folder
        now = now_ms()
        stored = [(path, self.store.blobs.put_file(source)) for path, source in files]
        with self.db.write() as conn:
            insert_ignore(
                conn,
                t.blobs,
                [{"hash": b.hash, "size": b.size, "created_at": now} for _, b in stored],
            )
            upsert(
                conn,
                t.artifacts,
                [
                    {
                        "owner_type": "run",
                        "owner_id": run_id,
                        "path": path,
                        "blob_hash": b.hash,
                        "size": b.size,
                        "created_at": now,
                    }
                    for path, b in stored
                ],
                update=["blob_hash", "size", "created_at"],
            )
        return [Artifact(path, b.size, b.hash) for path, b in stored]

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """Every artifact file of the run, or those under ``path``."""
        a = t.artifacts.c
        query = sa.select(a.path, a.size, a.blob_hash).where(
            a.owner_type == "run", a.owner_id == run_id
        )
        if path:
            prefix = normalize_relpath(path, what="artifact path")
            query = query.where(
                sa.or_(a.path == prefix, a.path.startswith(prefix + "/", autoescape=True))
            )
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(query.order_by(a.path)).all()
        return [Artifact(r.path, r.size, r.blob_hash) for r in rows]

    def download_artifacts(
        self, run_id: str, dst: str | os.PathLike[str], path: str | None = None
    ) -> Path:
        """Copy the run's artifacts (or those under ``path``) into folder ``dst``; returns it."""
        items = self.list_artifacts(run_id, path)
        if path and not items:
            raise NotFound(f"run {run_id} has no artifact at {path!r}")
        target = Path(dst)
        for item in items:
            dest = safe_join(target, item.path, what="artifact path")
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.store.blobs.get_file(item.blob_hash, dest)
        return target
