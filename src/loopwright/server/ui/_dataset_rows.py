"""The datasets pages' reads: a page of datasets or of one dataset's versions in a few queries
(one per table, never one per row), without the versions' stored profiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ...errors import NotFound
from ...store import schema as t

if TYPE_CHECKING:
    from ...store.database import Database
    from ._paging import Paging

__all__ = [
    "DatasetRow",
    "RunRef",
    "VersionRow",
    "dataset_page",
    "readers",
    "version_numbers",
    "version_page",
]


@dataclass(frozen=True)
class DatasetRow:
    name: str
    description: str | None
    created_at: int
    versions: int
    latest: int | None  # the newest version's number
    latest_at: int | None
    latest_size: int | None
    latest_files: int | None
    total_size: int  # every version's size together (shared files counted once per version)


@dataclass(frozen=True)
class RunRef:
    id: str
    name: str
    status: str
    context: str


@dataclass
class VersionRow:
    id: str
    number: int
    message: str | None
    created_at: int
    created_by: str | None
    file_count: int
    total_size: int
    rows: int | None  # from the stored profile's tabular files, when there is one
    parent: str | None  # ``name@vN`` of the parent version
    parent_dataset: str | None
    parent_number: int | None
    produced_by_run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    runs: list[RunRef] = field(default_factory=list)


def dataset_page(db: Database, paging: Paging) -> tuple[list[DatasetRow], int]:
    """A page of datasets by name with their newest version, and how many datasets there are."""
    d, v = t.datasets.c, t.dataset_versions.c
    summary = (
        sa.select(
            v.dataset_id,
            sa.func.count(v.id).label("versions"),
            sa.func.max(v.number).label("latest"),
            sa.func.sum(v.total_size).label("total_size"),
        )
        .group_by(v.dataset_id)
        .subquery()
    )
    newest = t.dataset_versions.alias("newest")
    query = (
        sa.select(
            d.name,
            d.description,
            d.created_at,
            summary.c.versions,
            summary.c.latest,
            summary.c.total_size,
            newest.c.created_at.label("latest_at"),
            newest.c.total_size.label("latest_size"),
            newest.c.file_count.label("latest_files"),
        )
        .select_from(
            t.datasets.outerjoin(summary, summary.c.dataset_id == d.id).outerjoin(
                newest,
                sa.and_(newest.c.dataset_id == d.id, newest.c.number == summary.c.latest),
            )
        )
        .order_by(d.name)
        .offset(paging.offset)
        .limit(paging.limit)
    )
    with db.read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(t.datasets)).scalar_one()
        rows = [
            DatasetRow(
                name=r.name,
                description=r.description,
                created_at=r.created_at,
                versions=r.versions or 0,
                latest=r.latest,
                latest_at=r.latest_at,
                latest_size=r.latest_size,
                latest_files=r.latest_files,
                total_size=int(r.total_size or 0),
            )
            for r in conn.execute(query)
        ]
    return rows, int(total)


def _dataset_id(conn: sa.Connection, name: str) -> str:
    found = conn.execute(sa.select(t.datasets.c.id).where(t.datasets.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"dataset {name!r} does not exist; the datasets page lists them")
    return str(found)


def version_numbers(db: Database, name: str) -> list[int]:
    """Every version number of ``name``, newest first (the diff's pickers)."""
    v = t.dataset_versions.c
    with db.read() as conn:
        dataset_id = _dataset_id(conn, name)
        query = sa.select(v.number).where(v.dataset_id == dataset_id).order_by(v.number.desc())
        return [int(n) for n in conn.execute(query).scalars()]


def version_page(
    db: Database, name: str, paging: Paging
) -> tuple[list[VersionRow], int, str | None]:
    """A page of ``name``'s versions, newest first, with tags, aliases, parents and the runs
    that read them; how many versions there are; the dataset's description."""
    v = t.dataset_versions.c
    parent = t.dataset_versions.alias("parent")
    parent_set = t.datasets.alias("parent_set")
    with db.read() as conn:
        dataset_id = _dataset_id(conn, name)
        description = conn.execute(
            sa.select(t.datasets.c.description).where(t.datasets.c.id == dataset_id)
        ).scalar()
        total = conn.execute(
            sa.select(sa.func.count()).where(v.dataset_id == dataset_id)
        ).scalar_one()
        query = (
            sa.select(
                v.id,
                v.number,
                v.message,
                v.created_at,
                v.created_by,
                v.file_count,
                v.total_size,
                v.produced_by_run_id,
                parent.c.number.label("parent_number"),
                parent_set.c.name.label("parent_dataset"),
            )
            .select_from(
                t.dataset_versions.outerjoin(parent, parent.c.id == v.parent_id).outerjoin(
                    parent_set, parent_set.c.id == parent.c.dataset_id
                )
            )
            .where(v.dataset_id == dataset_id)
            .order_by(v.number.desc())
            .offset(paging.offset)
            .limit(paging.limit)
        )
        found = {
            r.id: VersionRow(
                id=r.id,
                number=r.number,
                message=r.message,
                created_at=r.created_at,
                created_by=r.created_by,
                file_count=r.file_count,
                total_size=r.total_size,
                rows=None,
                parent=(
                    f"{r.parent_dataset}@v{r.parent_number}"
                    if r.parent_number is not None
                    else None
                ),
                parent_dataset=r.parent_dataset,
                parent_number=r.parent_number,
                produced_by_run_id=r.produced_by_run_id,
            )
            for r in conn.execute(query)
        }
        ids = list(found)
        if ids:
            tags = t.dataset_version_tags.c
            for tag in conn.execute(
                sa.select(tags.version_id, tags.key, tags.value)
                .where(tags.version_id.in_(ids))
                .order_by(tags.key)
            ):
                found[tag.version_id].tags[tag.key] = tag.value
            aliases = t.dataset_aliases.c
            for alias in conn.execute(
                sa.select(aliases.version_id, aliases.alias)
                .where(aliases.version_id.in_(ids))
                .order_by(aliases.alias)
            ):
                found[alias.version_id].aliases.append(alias.alias)
            inputs, runs = t.run_inputs.c, t.runs.c
            for read in conn.execute(
                sa.select(
                    inputs.dataset_version_id, inputs.context, runs.id, runs.name, runs.status
                )
                .join(t.runs, runs.id == inputs.run_id)
                .where(inputs.dataset_version_id.in_(ids))
                .order_by(inputs.created_at, runs.id)
            ):
                found[read.dataset_version_id].runs.append(
                    RunRef(read.id, read.name, read.status, read.context)
                )
            _fill_rows(conn, found)
    return list(found.values()), int(total), description


def _fill_rows(conn: sa.Connection, found: dict[str, VersionRow]) -> None:
    """Row counts from the stored profiles (each a JSON document: read only those of the page)."""
    import json

    v = t.dataset_versions.c
    query = sa.select(v.id, v.profile_json).where(
        v.id.in_(list(found)), v.profile_json.is_not(None)
    )
    for r in conn.execute(query):
        profile = json.loads(r.profile_json)
        counts = [p.get("row_count") for p in profile.values() if isinstance(p, dict)]
        known = [c for c in counts if isinstance(c, int)]
        found[r.id].rows = sum(known) if known else None


def readers(db: Database, version_id: str) -> list[RunRef]:
    """The runs that recorded the version as an input, oldest first."""
    inputs, runs = t.run_inputs.c, t.runs.c
    query = (
        sa.select(inputs.context, runs.id, runs.name, runs.status)
        .join(t.runs, runs.id == inputs.run_id)
        .where(inputs.dataset_version_id == version_id)
        .order_by(inputs.created_at, runs.id)
    )
    with db.read() as conn:
        return [RunRef(r.id, r.name, r.status, r.context) for r in conn.execute(query)]
