"""Model versions: registering packages (from a folder or a run), finding and retiring them.

A version's package is a set of ``artifacts`` rows (owner type ``model_version``) pointing at
blobs: the manifest ``loopwright-model.json`` plus every file it lists. Registering from a run
copies the run's rows under ``artifact_path`` (the blobs are shared, no bytes are copied) after
checking them against the manifest. Version numbers are taken under the model's row lock
(SQLite's write lock; ``SELECT … FOR UPDATE`` on PostgreSQL), so they run 1, 2, 3 … without gaps
under concurrent registration; the unique ``(model_id, version)`` constraint is the backstop.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa

from .._ids import new_id
from ..errors import Conflict, InvalidInput, NotFound, UnverifiedSource
from ..paths import normalize_relpath, safe_join
from ..store import schema as t
from ..store.upsert import insert_ignore, upsert
from ._base import check_model_name, check_tags, require_ready
from ._models import ModelsMixin
from ._queries import load_versions, model_row, resolve_row, version_row
from ._search import VERSION_COLUMNS, mentions, parse, version_filter
from ._sources import PackageFile, package_from_folder, package_from_run
from .entities import ModelVersion
from .packaging._package_manifest import PackageManifest

__all__ = ["OWNER", "VersionsMixin", "package_source", "store_package_rows"]

OWNER = "model_version"  # artifacts.owner_type of a version's package files
_URI_SCHEMES = ("runs:", "models:")
_v = t.model_versions.c


class VersionsMixin(ModelsMixin):
    """Register, find, download, describe and delete model versions."""

    def register(
        self,
        name: str,
        package_dir: str | os.PathLike[str] | None = None,
        *,
        model_uri: str | None = None,
        run_id: str | None = None,
        artifact_path: str = "model",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        dataset_version_ids: Sequence[str] | None = None,
        source: str | None = None,
    ) -> ModelVersion:
        """Register a new version of ``name`` (creating the model if needed).

        Give the ``model_uri`` that ``run.log_model`` returned (``runs:/<run id>/<path>``, also
        accepted in place of ``package_dir``, as MLflow's ``register_model(model_uri, name)``);
        or ``package_dir``, a package folder whose files are stored as blobs; or ``run_id``,
        whose artifacts under ``artifact_path`` hold the package (folder and run: the folder is
        stored and the version linked to the run). ``metrics`` default to the run's latest
        metrics and ``dataset_version_ids`` to the run's inputs. ``source`` overrides the
        recorded origin (e.g. ``mlflow:/path`` for an imported model).
        """
        package_dir, run_id, artifact_path = package_source(
            package_dir, model_uri, run_id, artifact_path
        )
        check_model_name(name)
        checked_tags = check_tags(tags)
        if package_dir is None and run_id is None:
            raise InvalidInput(
                "register needs package_dir (a package folder) or run_id (a run whose artifacts "
                "hold the package under artifact_path)"
            )
        if run_id is not None:
            with self.db.read() as conn:
                if (
                    conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first()
                    is None
                ):
                    raise NotFound(
                        f"run {run_id!r} does not exist; `loopwright runs list` shows recent runs"
                    )
                if metrics is None:
                    metrics = _run_metrics(conn, run_id)
                if dataset_version_ids is None:
                    dataset_version_ids = _run_inputs(conn, run_id)
                checked_tags = {**_run_feature_service(conn, run_id), **checked_tags}
        if package_dir is not None:
            manifest, files = package_from_folder(self.store.blobs, Path(package_dir))
            origin = str(Path(package_dir).resolve())
        else:
            assert run_id is not None
            prefix = (
                ""
                if artifact_path in ("", ".")
                else normalize_relpath(artifact_path, what="artifact path")
            )
            manifest, files = package_from_run(self.db, self.store.blobs, run_id, prefix)
            origin = f"runs:/{run_id}/{prefix}".rstrip("/")
        return self._record_version(
            name,
            manifest,
            files,
            source=origin if source is None else source,
            run_id=run_id,
            description=description,
            tags=checked_tags,
            metrics=_check_metrics(metrics or {}),
            dataset_version_ids=list(dict.fromkeys(dataset_version_ids or ())),
        )

    def _record_version(
        self,
        name: str,
        manifest: PackageManifest | None,
        files: list[PackageFile],
        *,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: dict[str, str],
        metrics: dict[str, float],
        dataset_version_ids: list[str],
        run_ref: str | None = None,
    ) -> ModelVersion:
        """Insert the version; without ``manifest`` (and ``files``) it is an external one."""
        version_id, now = new_id(), self._now()
        package_hash = files[0].blob_hash if manifest is not None else None  # the manifest's
        signature = None if manifest is None else manifest.signature
        with self.db.write() as conn:
            _require_datasets(conn, dataset_version_ids)
            model, _ = self._ensure_model(conn, name)
            number = 1 + (
                conn.execute(
                    sa.select(sa.func.max(_v.version)).where(_v.model_id == model.id)
                ).scalar()
                or 0
            )
            conn.execute(
                t.model_versions.insert(),
                {
                    "id": version_id,
                    "model_id": model.id,
                    "version": number,
                    "run_id": run_id,
                    "run_ref": run_ref,
                    "source": source,
                    "source_kind": "package" if manifest is not None else "external",
                    "status": "READY",
                    "stage": "None",
                    "flavor": None if manifest is None else manifest.flavor,
                    "package_hash": package_hash,
                    "signature_json": None
                    if signature is None
                    else json.dumps(signature.to_dict(), sort_keys=True),
                    "metrics_json": json.dumps(metrics, sort_keys=True, allow_nan=False),
                    "description": description,
                    "created_by": self.actor,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            store_package_rows(conn, version_id, files, now)
            insert_ignore(
                conn,
                t.model_version_tags,
                [{"version_id": version_id, "key": k, "value": v} for k, v in tags.items()],
            )
            insert_ignore(
                conn,
                t.model_version_datasets,
                [{"version_id": version_id, "dataset_version_id": d} for d in dataset_version_ids],
            )
            self._audit(
                conn,
                "model_version.create",
                "model_version",
                version_id,
                after={
                    "model": name,
                    "version": number,
                    "source": source,
                    "source_kind": "package" if manifest is not None else "external",
                    "run_id": run_id or run_ref,
                    "flavor": None if manifest is None else manifest.flavor,
                    "package_hash": package_hash,
                    "dataset_version_ids": dataset_version_ids,
                },
            )
            return load_versions(conn, [version_row(conn, model, number)])[0]

    # --- finding ---------------------------------------------------------------------------

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            return load_versions(conn, [version_row(conn, model_row(conn, name), version)])[0]

    def get_version_by_id(self, version_id: str) -> ModelVersion:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.model_versions).where(_v.id == version_id)).first()
            if row is None:
                raise NotFound(f"model version id {version_id!r} does not exist")
            return load_versions(conn, [row])[0]

    def resolve(self, name: str, ref: int | str) -> ModelVersion:
        """The loadable version ``ref`` names: a number (``3``), ``latest``, a stage
        (``Production``: its newest version there), an alias, or ``@<alias>`` (only an alias,
        e.g. one named ``production``; models:/name@alias). Deleted versions are refused."""
        with self.db.read() as conn:
            return load_versions(conn, [resolve_row(conn, model_row(conn, name), ref)])[0]

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        """The model's versions, oldest first."""
        with self.db.read() as conn:
            query = sa.select(t.model_versions).where(_v.model_id == model_row(conn, name).id)
            if not include_deleted:
                query = query.where(_v.status != "DELETED")
            return load_versions(conn, conn.execute(query.order_by(_v.version)).all())

    def search_versions(self, filter_string: str = "") -> list[ModelVersion]:
        """Versions matching e.g. ``"name = 'churn' AND stage = 'Production'"`` (columns: name,
        version, run_id, source, stage, status, tags.<key>; MLflow's spellings too); deleted ones
        only if ``status`` is named."""
        clauses = parse(filter_string, VERSION_COLUMNS)
        with self.db.read() as conn:
            query = (
                sa.select(t.model_versions)
                .join(t.registered_models, t.registered_models.c.id == _v.model_id)
                .where(*version_filter(clauses, conn.dialect.name))
                .order_by(t.registered_models.c.name, _v.version)
            )
            if not mentions(clauses, "status"):
                query = query.where(_v.status != "DELETED")
            return load_versions(conn, conn.execute(query).all())

    def package_files(self, version: ModelVersion) -> list[tuple[str, str, int]]:
        """``(path, blob_hash, size)`` of every file of the version's package, by path."""
        a = t.artifacts.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(a.path, a.blob_hash, a.size)
                .where(a.owner_type == OWNER, a.owner_id == version.id)
                .order_by(a.path)
            ).all()
        return [(row.path, row.blob_hash, row.size) for row in rows]

    def download_package(self, version: ModelVersion, dst: str | os.PathLike[str]) -> Path:
        """Write the package into folder ``dst`` (new or empty), every file verified."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.model_versions).where(_v.id == version.id)).first()
            if row is None:
                raise NotFound(f"model version id {version.id!r} does not exist")
            require_ready(row, version.model, "downloaded")
            if row.source_kind == "external":
                raise UnverifiedSource.of(version.model, row.version, row.source, "downloaded")
        target = Path(dst)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InvalidInput(f"{str(target)!r} is not an empty folder; pick a new folder")
        for path, blob_hash, _size in self.package_files(version):
            dest = safe_join(target, path, what="package path")
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.store.blobs.get_file(blob_hash, dest)
        return target

    # --- changing --------------------------------------------------------------------------

    def update_version(self, name: str, version: int, *, description: str | None) -> ModelVersion:
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            row = version_row(conn, model, version)
            conn.execute(
                t.model_versions.update()
                .where(_v.id == row.id)
                .values(description=description, updated_at=self._now())
            )
            self._audit(
                conn,
                "model_version.update",
                "model_version",
                row.id,
                before={"description": row.description},
                after={"description": description},
            )
            return load_versions(conn, [version_row(conn, model, version)])[0]

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> ModelVersion:
        return self._tag_version(name, version, key, value)

    def delete_version_tag(self, name: str, version: int, key: str) -> ModelVersion:
        return self._tag_version(name, version, key, None)

    def _tag_version(self, name: str, version: int, key: str, value: str | None) -> ModelVersion:
        if value is not None:
            ((key, value),) = check_tags({key: value}).items()
        tg = t.model_version_tags.c
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            row = version_row(conn, model, version)
            where = (tg.version_id == row.id, tg.key == key)
            before = conn.execute(sa.select(tg.value).where(*where)).scalar()
            if value is None:
                if before is None:
                    raise NotFound(f"version {version} of model {name!r} has no tag {key!r}")
                conn.execute(t.model_version_tags.delete().where(*where))
            else:
                upsert(
                    conn,
                    t.model_version_tags,
                    [{"version_id": row.id, "key": key, "value": value}],
                    update=["value"],
                )
            self._audit(
                conn, "model_version.tag", "model_version", row.id, {key: before}, {key: value}
            )
            return load_versions(conn, [row])[0]

    def delete_version(self, name: str, version: int) -> ModelVersion:
        """Mark the version DELETED: it stays listed for history but cannot be loaded, aliased
        or staged. Refused while it has an alias or is in Production."""
        al = t.model_aliases.c
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            row = version_row(conn, model, version)
            if row.status != "DELETED":
                aliases = (
                    conn.execute(
                        sa.select(al.alias).where(al.version_id == row.id).order_by(al.alias)
                    )
                    .scalars()
                    .all()
                )
                if aliases:
                    raise Conflict(
                        f"version {version} of model {name!r} has aliases "
                        f"{', '.join(aliases)}; move or delete them first"
                    )
                if row.stage == "Production":
                    raise Conflict(
                        f"version {version} of model {name!r} is in Production; archive it "
                        "(transition_stage(..., 'Archived')) first"
                    )
                conn.execute(
                    t.model_versions.update()
                    .where(_v.id == row.id)
                    .values(status="DELETED", updated_at=self._now())
                )
                self._audit(
                    conn,
                    "model_version.delete",
                    "model_version",
                    row.id,
                    before={"model": name, "version": version, "status": row.status},
                    after={"model": name, "version": version, "status": "DELETED"},
                )
            return load_versions(conn, [version_row(conn, model, version)])[0]


def store_package_rows(
    conn: sa.Connection, version_id: str, files: Sequence[PackageFile], now: int
) -> None:
    """The ``blobs`` and ``artifacts`` rows of a version's package files (none: nothing)."""
    if not files:
        return
    insert_ignore(
        conn,
        t.blobs,
        [{"hash": f.blob_hash, "size": f.size, "created_at": now} for f in files],
    )
    conn.execute(
        t.artifacts.insert(),
        [
            {
                "owner_type": OWNER,
                "owner_id": version_id,
                "path": f.path,
                "blob_hash": f.blob_hash,
                "size": f.size,
                "created_at": now,
            }
            for f in files
        ],
    )


def _check_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    checked = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"metric name {key!r} must be a non-empty string")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput(f"metric {key!r} must be a finite number, not {value!r}")
        checked[key] = float(value)
    return checked


def _run_metrics(conn: sa.Connection, run_id: str) -> dict[str, float]:
    lm = t.latest_metrics.c
    rows = conn.execute(
        sa.select(lm.key, lm.value).where(lm.run_id == run_id, lm.is_nan.is_(False))
    ).all()
    return {row.key: row.value for row in rows if math.isfinite(row.value)}


def _run_inputs(conn: sa.Connection, run_id: str) -> list[str]:
    ri = t.run_inputs.c
    return list(
        conn.execute(
            sa.select(ri.dataset_version_id)
            .where(ri.run_id == run_id)
            .distinct()
            .order_by(ri.dataset_version_id)
        ).scalars()
    )


# The feature service (``svc@vN``) a run trained on (tagged when its training set was saved):
# a version registered from the run takes it, so serving can fetch the same features.
FEATURE_SERVICE_TAG = "loopwright.feature_service"


def _run_feature_service(conn: sa.Connection, run_id: str) -> dict[str, str]:
    rt = t.run_tags.c
    value = conn.execute(
        sa.select(rt.value).where(rt.run_id == run_id, rt.key == FEATURE_SERVICE_TAG)
    ).scalar()
    return {} if value is None else {FEATURE_SERVICE_TAG: value}


def _require_datasets(conn: sa.Connection, ids: Sequence[str]) -> None:
    dv = t.dataset_versions.c
    known = set(conn.execute(sa.select(dv.id).where(dv.id.in_(ids))).scalars()) if ids else set()
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFound(
            f"dataset versions {', '.join(missing)} do not exist; pass ids of stored versions"
        )


def package_source(
    package_dir: str | os.PathLike[str] | None,
    model_uri: str | None,
    run_id: str | None,
    artifact_path: str,
) -> tuple[str | os.PathLike[str] | None, str | None, str]:
    """``(package_dir, run_id, artifact_path)`` from ``register``'s arguments, a model URI
    (given as ``model_uri`` or in place of ``package_dir``) split into run and path."""
    if model_uri is None and isinstance(package_dir, str) and package_dir.startswith(_URI_SCHEMES):
        model_uri, package_dir = package_dir, None
    if model_uri is None:
        return package_dir, run_id, artifact_path
    if package_dir is not None or run_id is not None:
        raise InvalidInput(
            f"register got model_uri {model_uri!r} and also package_dir or run_id; give one"
        )
    from .loading import parse_model_uri

    parsed = parse_model_uri(model_uri)
    if parsed.kind != "runs" or parsed.run_id is None or parsed.path is None:
        raise InvalidInput(
            f"register takes the runs:/<run id>/<path> URI that run.log_model returns, not "
            f"{model_uri!r}; a registered version already has a number (set an alias instead)"
        )
    return None, parsed.run_id, parsed.path
