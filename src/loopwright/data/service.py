"""Datasets and their versions on the metadata and blob stores.

Example:
    >>> import loopwright as lw, pathlib
    >>> client = lw.connect(home="lw-doc-data")
    >>> _ = pathlib.Path("rows.csv").write_text("a,b\\n1,2\\n")
    >>> version = client.datasets.add("toy", "rows.csv", message="first")
    >>> (version.ref, version.file_count)
    ('toy@v1', 1)
    >>> client.datasets.add("toy", "rows.csv").id == version.id  # same content, same version
    True
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import AlreadyExists, ConfigError, InvalidInput, NotFound
from ..paths import normalize_relpath, safe_join
from ..store import schema as t
from ..store import statements
from ..store.audit import append_event
from ..store.home import Store
from ..store.limits import KEY, TAG_VALUE, check_text
from ..store.upsert import insert_ignore, upsert
from ._names import check_dataset_name as _check_name
from .entities import Dataset, DatasetVersion, FileEntry
from .ingest import collect_files, manifest_hash, store_files, store_table
from .pointer import Pointer
from .stat_cache import StatCache

if TYPE_CHECKING:
    from .protocol import Datasets
    from .validation import ValidationResult

__all__ = ["DatasetService", "local_service"]

_OWNER = "dataset"  # artifacts.owner_type of a version's files
_FILE_COLUMNS = ("owner_type", "owner_id", "path", "blob_hash", "size", "created_at")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,99}$")
_MAX_PROFILED_FILES = 20


class DatasetService:
    """Add, find, compare and materialise dataset versions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self._cache: StatCache | None = None

    @property
    def stat_cache(self) -> StatCache:
        if self._cache is None:
            self._cache = StatCache(self.store.settings.home / "cache" / "stat.db")
        return self._cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    # --- adding ---------------------------------------------------------------------------

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
        """Store a new version of ``name`` from files, folders, globs, a table or an fsspec URL.

        Identical content returns the existing version instead of making a new one.
        """
        _check_name(name)
        if run_id is not None:
            with self.db.read() as conn:
                known = conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first()
            if known is None:
                raise NotFound(f"run {run_id!r} does not exist; pass the id of the producing run")
        profile_paths: dict[str, Any] = {}
        if isinstance(source, str | os.PathLike) or (
            isinstance(source, Sequence) and not isinstance(source, str | bytes)
        ):
            sources = [source] if isinstance(source, str | os.PathLike) else list(source)
            remote = [os.fspath(s) for s in sources if "://" in os.fspath(s)]
            if remote:
                from .remote_source import fetch_remote

                entries, description = fetch_remote(remote, self.store.blobs), ", ".join(remote)
            else:
                files = collect_files(sources)
                entries = store_files(
                    files,
                    self.store.blobs,
                    self.stat_cache,
                    progress=progress,
                    link=self.store.settings.data_link,
                )
                profile_paths = {rel: path for rel, path in files}
                description = ", ".join(os.path.abspath(os.fspath(s)) for s in sources)
        else:
            entries = [store_table(source, self.store.blobs, table_name)]
            profile_paths = {table_name: source}
            description = f"{type(source).__module__}.{type(source).__name__}"
        content_hash = manifest_hash(entries)
        existing = self._find_by_content(name, content_hash)
        if existing is not None:  # same content: the same version, with any new labels
            for key, value in (tags or {}).items():
                self.tag(existing.ref, key, value)
            for alias in aliases:
                existing = self.set_alias(existing.ref, alias)
            return self._version_by_id(existing.id)
        schema, profile = _profiles(profile_paths)
        return self._record(
            name,
            entries,
            content_hash,
            message=message,
            tags=tags or {},
            aliases=aliases,
            run_id=run_id,
            source=description,
            schema=schema,
            profile=profile,
        )

    def _add_manifest(
        self,
        name: str,
        entries: Sequence[FileEntry],
        *,
        message: str | None = None,
        tags: Mapping[str, str] | None = None,
        aliases: Sequence[str] = (),
        run_id: str | None = None,
        source: str,
    ) -> DatasetVersion:
        """A version made of blobs already in the store (a server receiving an upload).

        Each entry must name a stored blob of its size. Identical content gives back the same
        version (with any new labels); tabular files are profiled from the stored blobs.
        """
        import tempfile

        checked = sorted(entries, key=lambda e: e.path)
        if len({e.path for e in checked}) != len(checked):
            raise InvalidInput("the manifest lists a path twice; give each file once")
        for entry in checked:
            normalize_relpath(entry.path, what="dataset path")
            stored = (
                self.store.blobs.size(entry.hash) if self.store.blobs.exists(entry.hash) else None
            )
            if stored != entry.size:
                state = "not stored" if stored is None else f"{stored} bytes, not {entry.size}"
                raise InvalidInput(f"{entry.path!r}: blob {entry.hash} is {state}; upload it first")
        content_hash = manifest_hash(checked)
        existing = self._find_by_content(_check_name(name), content_hash)
        if existing is not None:
            for key, value in (tags or {}).items():
                self.tag(existing.ref, key, value)
            for alias in aliases:
                existing = self.set_alias(existing.ref, alias)
            return self._version_by_id(existing.id)
        with tempfile.TemporaryDirectory(prefix="lw-profile-") as tmp:
            paths: dict[str, Any] = {}
            for index, entry in enumerate(checked[:_MAX_PROFILED_FILES]):
                if entry.path.lower().endswith((".csv", ".tsv", ".parquet", ".pq", ".csv.gz")):
                    local = Path(tmp) / f"{index:05d}-{Path(entry.path).name}"
                    self.store.blobs.get_file(entry.hash, local)  # verified on the way
                    paths[entry.path] = local
            schema, profile = _profiles(paths)
        return self._record(
            name,
            checked,
            content_hash,
            message=message,
            tags=tags or {},
            aliases=aliases,
            run_id=run_id,
            source=source,
            schema=schema,
            profile=profile,
        )

    def find_version(self, name: str, content_hash: str) -> DatasetVersion | None:
        """The version of ``name`` with this content, if this store has one."""
        return self._find_by_content(name, content_hash)

    def import_version(
        self, pointer: Pointer, entries: list[FileEntry], *, source: str
    ) -> DatasetVersion:
        """Record a version known from a pointer and its manifest (pulled from a remote)."""
        return self._record(
            pointer.dataset,
            entries,
            pointer.content_hash,
            message=f"pulled {pointer.ref}",
            tags={},
            aliases=(),
            run_id=None,
            source=source,
            schema=None,
            profile=None,
            version_id=pointer.id,
        )

    def resolve_pointer(self, pointer: Pointer) -> DatasetVersion:
        """The version a pointer file names: by id, else by content (another store's id).

        A version found by id must hold the pointer's dataset and content: a pointer edited to
        name other content is refused rather than trusted."""
        found: DatasetVersion | None
        try:
            found = self._version_by_id(pointer.id)
        except NotFound:
            found = self._find_by_content(pointer.dataset, pointer.content_hash)
        else:
            if (found.dataset, found.content_hash) != (pointer.dataset, pointer.content_hash):
                raise InvalidInput(
                    f"the pointer names version {pointer.id} as dataset {pointer.dataset!r} with "
                    f"content {pointer.content_hash[:12]}, but that version is {found.dataset!r} "
                    f"with content {found.content_hash[:12]}; the pointer was edited: restore it "
                    "from Git or re-create it with `loopwright data add`"
                )
        if found is None:
            raise NotFound(
                f"this store has no version {pointer.dataset}@v{pointer.version} "
                f"({pointer.id}); fetch it with `loopwright data pull <pointer> --remote URL`"
            )
        return found

    def _find_by_content(self, name: str, content_hash: str) -> DatasetVersion | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.dataset_versions.c.id)
                .join(t.datasets, t.datasets.c.id == t.dataset_versions.c.dataset_id)
                .where(t.datasets.c.name == name, t.dataset_versions.c.content_hash == content_hash)
            ).first()
        return None if row is None else self._version_by_id(row.id)

    def _record(
        self,
        name: str,
        entries: list[FileEntry],
        content_hash: str,
        *,
        message: str | None,
        tags: Mapping[str, str],
        aliases: Sequence[str],
        run_id: str | None,
        source: str,
        schema: dict[str, Any] | None,
        profile: dict[str, Any] | None,
        version_id: str | None = None,
    ) -> DatasetVersion:
        now = now_ms()
        version_id = version_id or new_id()
        with self.db.write() as conn:
            dataset_id = self._dataset_id(conn, name, create=True)
            previous = conn.execute(
                sa.select(t.dataset_versions.c.id, t.dataset_versions.c.number)
                .where(t.dataset_versions.c.dataset_id == dataset_id)
                .order_by(t.dataset_versions.c.number.desc())
                .limit(1)
            ).first()
            conn.execute(
                t.dataset_versions.insert(),
                {
                    "id": version_id,
                    "dataset_id": dataset_id,
                    "number": 1 if previous is None else previous.number + 1,
                    "content_hash": content_hash,
                    "message": message,
                    "parent_id": None if previous is None else previous.id,
                    "produced_by_run_id": run_id,
                    "file_count": len(entries),
                    "total_size": sum(e.size for e in entries),
                    "source": source,
                    "schema_json": None if schema is None else json.dumps(schema),
                    "profile_json": None if profile is None else json.dumps(profile),
                    "created_by": self.store.actor,
                    "created_at": now,
                },
            )
            # Raw multi-row INSERTs: Core's row-by-row binding doubled the cost of 20,000 files.
            statements.insert_many(
                conn,
                "blobs",
                ("hash", "size", "created_at"),
                [(h, s, now) for h, s in {(e.hash, e.size) for e in entries}],
                " ON CONFLICT DO NOTHING",
            )
            statements.insert_many(
                conn,
                "artifacts",
                _FILE_COLUMNS,
                [(_OWNER, version_id, e.path, e.hash, e.size, now) for e in entries],
            )
            insert_ignore(
                conn,
                t.dataset_version_tags,
                [{"version_id": version_id, "key": k, "value": str(v)} for k, v in tags.items()],
            )
            append_event(
                conn,
                actor=self.store.actor,
                action="dataset_version.create",
                subject_type="dataset_version",
                subject_id=version_id,
                after={"dataset": name, "content_hash": content_hash, "files": len(entries)},
            )
            for alias in aliases:
                self._set_alias(conn, dataset_id, version_id, alias)
        return self._version_by_id(version_id)

    def _dataset_id(self, conn: sa.Connection, name: str, *, create: bool = False) -> str:
        row = conn.execute(sa.select(t.datasets.c.id).where(t.datasets.c.name == name)).first()
        if row is not None:
            return str(row.id)
        if not create:
            raise NotFound(f"dataset {name!r} does not exist; `loopwright data list` shows them")
        dataset_id = new_id()
        now = now_ms()
        conn.execute(
            t.datasets.insert(),
            {"id": dataset_id, "name": name, "created_at": now, "updated_at": now},
        )
        return dataset_id

    # --- finding --------------------------------------------------------------------------

    def get(self, ref: str) -> DatasetVersion:
        """A version by reference: ``name`` or ``name@latest``, ``name@v3``, ``name@3``,
        ``name@<alias>`` or ``name@<version id>``."""
        name, _, selector = ref.partition("@")
        selector = selector or "latest"
        v = t.dataset_versions.c
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, _check_name(name))
            query = sa.select(v.id).where(v.dataset_id == dataset_id)
            if selector == "latest":
                query = query.order_by(v.number.desc()).limit(1)
            elif re.fullmatch(r"v?\d+", selector):
                digits = selector.lstrip("v").lstrip("0") or "0"
                number = int(digits) if len(digits) <= 10 else -1
                # Past the column's 32 bits no version exists (and the databases refuse it).
                query = query.where(v.number == (number if number < 2**31 else -1))
            else:
                alias = conn.execute(
                    sa.select(t.dataset_aliases.c.version_id).where(
                        t.dataset_aliases.c.dataset_id == dataset_id,
                        t.dataset_aliases.c.alias == selector,
                    )
                ).first()
                query = query.where(v.id == (alias.version_id if alias else selector))
            row = conn.execute(query).first()
            if row is None:
                numbers = (
                    conn.execute(
                        sa.select(v.number).where(v.dataset_id == dataset_id).order_by(v.number)
                    )
                    .scalars()
                    .all()
                )
                shown = f"v{numbers[0]}..v{numbers[-1]}" if numbers else "none"
                raise NotFound(f"dataset {name!r} has no version {selector!r}; versions: {shown}")
        return self._version_by_id(row.id)

    def get_by_id(self, version_id: str) -> DatasetVersion:
        """A version by its id (what run inputs and model versions record)."""
        return self._version_by_id(version_id)

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        v = t.dataset_versions.c
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, name)
            ids = (
                conn.execute(
                    sa.select(v.id).where(v.dataset_id == dataset_id).order_by(v.number.desc())
                )
                .scalars()
                .all()
            )
        return [self._version_by_id(i) for i in ids]

    def list_datasets(self) -> list[Dataset]:
        d, v = t.datasets.c, t.dataset_versions.c
        query = (
            sa.select(d.id, d.name, d.description, d.created_at, sa.func.count(v.id))
            .select_from(t.datasets.outerjoin(t.dataset_versions, v.dataset_id == d.id))
            .group_by(d.id, d.name, d.description, d.created_at)
            .order_by(d.name)
        )
        with self.db.read() as conn:
            return [Dataset(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(query)]

    def files(self, version: DatasetVersion) -> list[FileEntry]:
        a = t.artifacts.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(a.path, a.size, a.blob_hash)
                .where(a.owner_type == _OWNER, a.owner_id == version.id)
                .order_by(a.path)
            ).all()
        return [FileEntry(path, size, digest) for path, size, digest in rows]  # unpacked: fast

    def download(self, version: DatasetVersion, dst: str | os.PathLike[str]) -> Path:
        """Write the version's files into folder ``dst``, each verified; returns ``dst``."""
        target = Path(dst)
        for entry in self.files(version):
            dest = safe_join(target, entry.path, what="dataset path")
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.store.blobs.get_file(entry.hash, dest)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def runs_using(self, version: DatasetVersion) -> list[str]:
        """Ids of the runs that declared this version as an input."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(t.run_inputs.c.run_id).where(
                        t.run_inputs.c.dataset_version_id == version.id
                    )
                ).scalars()
            )

    def validate(
        self, ref: str | DatasetVersion, suite: Any, *, files: str | None = None, save: bool = True
    ) -> ValidationResult:
        """Check a version's tabular files (one table) against an expectation suite.

        ``suite`` is a :class:`~loopwright.data.validation.Suite`, a YAML file, or the name of a
        stored suite (``name`` or ``name@3``). The suite is stored (versioned by content) and
        the result recorded with the version. ``files`` is a glob within the version
        (default: every CSV/Parquet file).
        """
        import dataclasses
        import fnmatch
        import tempfile

        from ._query_guard import QueryLimits
        from .validation import Suite, load_suite, save_result, save_suite, validate_files

        version = ref if isinstance(ref, DatasetVersion) else self.get(ref)
        if (
            isinstance(suite, str)
            and not Path(suite).is_file()
            and not suite.endswith((".yaml", ".yml"))
        ):
            name, _, number = suite.partition("@")
            with self.db.read() as conn:
                _, _, suite = load_suite(conn, name, int(number) if number else None)
        elif not isinstance(suite, Suite):
            suite = Suite.from_yaml(suite)
        pattern = files or "*"
        chosen = [
            e
            for e in self.files(version)
            if fnmatch.fnmatch(e.path, pattern)
            and e.path.lower().endswith((".csv", ".tsv", ".parquet", ".pq", ".csv.gz"))
        ]
        if not chosen:
            raise InvalidInput(f"{version.ref} has no CSV or Parquet file matching {pattern!r}")
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for index, entry in enumerate(chosen):  # verified copies, named for their format
                path = Path(tmp) / f"{index:05d}-{Path(entry.path).name}"
                self.store.blobs.get_file(entry.hash, path)
                paths.append(path)
            limits = QueryLimits.of(self.store.settings)
            result = validate_files(suite, paths, limits=limits)
        if save:
            with self.db.write() as conn:
                suite_id, suite_version = save_suite(conn, suite)
                result = dataclasses.replace(result, suite_version=suite_version)
                save_result(conn, version.id, suite_id, result)
        return result

    def validation_results(self, version: DatasetVersion) -> list[dict[str, Any]]:
        """The latest result of each suite run against this version."""
        from .validation import latest_results

        with self.db.read() as conn:
            return latest_results(conn, version.id)

    def _version_by_id(self, version_id: str) -> DatasetVersion:
        v = t.dataset_versions.c
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.dataset_versions, t.datasets.c.name)
                .join(t.datasets, t.datasets.c.id == v.dataset_id)
                .where(v.id == version_id)
            ).first()
            if row is None:
                raise NotFound(f"dataset version {version_id!r} does not exist")
            tags = dict(
                conn.execute(
                    sa.select(t.dataset_version_tags.c.key, t.dataset_version_tags.c.value).where(
                        t.dataset_version_tags.c.version_id == version_id
                    )
                ).all()
            )
            aliases = (
                conn.execute(
                    sa.select(t.dataset_aliases.c.alias)
                    .where(t.dataset_aliases.c.version_id == version_id)
                    .order_by(t.dataset_aliases.c.alias)
                )
                .scalars()
                .all()
            )
        return DatasetVersion(
            id=row.id,
            dataset=row.name,
            number=row.number,
            content_hash=row.content_hash,
            message=row.message,
            parent_id=row.parent_id,
            produced_by_run_id=row.produced_by_run_id,
            file_count=row.file_count,
            total_size=row.total_size,
            source=row.source,
            created_by=row.created_by,
            created_at=row.created_at,
            schema=json.loads(row.schema_json) if row.schema_json else None,
            profile=json.loads(row.profile_json) if row.profile_json else None,
            tags=tags,
            aliases=tuple(aliases),
        )

    # --- labels ---------------------------------------------------------------------------

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        """Point ``alias`` (e.g. ``golden``) at the version ``ref``; moves it if it existed."""
        version = self.get(ref)
        with self.db.write() as conn:
            self._set_alias(conn, self._dataset_id(conn, version.dataset), version.id, alias)
        return self._version_by_id(version.id)

    def _set_alias(self, conn: sa.Connection, dataset_id: str, version_id: str, alias: str) -> None:
        if not _ALIAS.fullmatch(alias) or alias == "latest" or re.fullmatch(r"v?\d+", alias):
            raise InvalidInput(
                f"alias {alias!r} must start with a letter, use letters, digits, '.', '_', '-', "
                "and not be 'latest' or look like a version number"
            )
        previous = conn.execute(
            sa.select(t.dataset_aliases.c.version_id).where(
                t.dataset_aliases.c.dataset_id == dataset_id, t.dataset_aliases.c.alias == alias
            )
        ).scalar()
        append_event(
            conn,
            actor=self.store.actor,
            action="dataset.alias",
            subject_type="dataset",
            subject_id=dataset_id,
            before={alias: previous},
            after={alias: version_id},
        )
        upsert(
            conn,
            t.dataset_aliases,
            [
                {
                    "dataset_id": dataset_id,
                    "alias": alias,
                    "version_id": version_id,
                    "updated_at": now_ms(),
                }
            ],
            update=["version_id", "updated_at"],
        )

    def tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        key = check_text("dataset tag key", key, limit=KEY)
        value = check_text(f"dataset tag {key!r} value", value, limit=TAG_VALUE, allow_empty=True)
        version = self.get(ref)
        with self.db.write() as conn:
            upsert(
                conn,
                t.dataset_version_tags,
                [{"version_id": version.id, "key": key, "value": value}],
                update=["value"],
            )
        return self._version_by_id(version.id)

    def describe(self, name: str, description: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                t.datasets.update().where(t.datasets.c.name == name).values(description=description)
            )
            if done.rowcount == 0:
                raise NotFound(f"dataset {name!r} does not exist")

    def create_empty(self, name: str) -> None:
        """Register a dataset name with no version yet (names are otherwise made on first add)."""
        with self.db.write() as conn:
            row = conn.execute(sa.select(t.datasets.c.id).where(t.datasets.c.name == name)).first()
            if row is not None:
                raise AlreadyExists(f"dataset {name!r} already exists")
            self._dataset_id(conn, _check_name(name), create=True)


def local_service(service: Datasets, doing: str) -> DatasetService:
    """``service`` itself if it works on a local store; ``doing`` (e.g. ``data checkout``)
    needs the stores (stat cache, blobs), which a server's client does not have."""
    if isinstance(service, DatasetService):
        return service
    raise ConfigError(
        f"{doing} works on a local store, not through a server; run it on the server's store "
        "(without --server / LOOPWRIGHT_SERVER_URI)"
    )


def _profiles(paths: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Schema and profile of each tabular file (or table) among the first files of a version."""
    try:
        from .profile import is_tabular, profile_file, profile_table, schema_of
    except ImportError:  # the [data] extra is not installed
        return None, None
    schema: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    for rel, source in list(paths.items())[:_MAX_PROFILED_FILES]:
        if isinstance(source, Path | str):
            if not is_tabular(source):
                continue
            schema[rel] = schema_of(source)
            profile[rel] = profile_file(source)
        else:
            import pyarrow as pa

            table = (
                source
                if isinstance(source, pa.Table)
                else pa.Table.from_pandas(source, preserve_index=False)
            )
            profile[rel] = profile_table(table)
            schema[rel] = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    return (schema or None), (profile or None)
