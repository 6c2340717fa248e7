"""Artifact trees by owner: the ``artifacts`` rows of a run, a logged model, a model version.

Each file is a row (owner type, owner id, path) pointing at a blob; folders exist only as path
prefixes. Writes store the blob first (outside the transaction), then the row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._ids import now_ms
from . import schema as t
from .upsert import insert_ignore, upsert

if TYPE_CHECKING:
    from .database import Database
    from .home import Store

__all__ = [
    "LOGGED_MODEL",
    "MLFLOW_VERSION",
    "PACKAGE",
    "RUN",
    "Entry",
    "FileRow",
    "children",
    "copy_tree",
    "delete_tree",
    "file_at",
    "files_under",
    "put_file",
]

RUN = "run"
LOGGED_MODEL = "logged_model"
MLFLOW_VERSION = "mlflow_version"  # the MLflow model folder a version was converted from
PACKAGE = "model_version"  # a version's Loopwright package

_a = t.artifacts.c


@dataclass(frozen=True)
class FileRow:
    path: str
    blob_hash: str
    size: int


@dataclass(frozen=True)
class Entry:
    """One child of a folder: a file (with its size) or a folder."""

    name: str
    is_dir: bool
    size: int | None


def _under(owner_type: str, owner_id: str, prefix: str) -> list[sa.ColumnElement[bool]]:
    where = [_a.owner_type == owner_type, _a.owner_id == owner_id]
    if prefix:
        where.append(_a.path.startswith(prefix + "/", autoescape=True))
    return where


def files_under(db: Database, owner_type: str, owner_id: str, prefix: str = "") -> list[FileRow]:
    """Every file strictly below folder ``prefix`` (all files for ``""``), by path."""
    query = sa.select(_a.path, _a.blob_hash, _a.size).where(*_under(owner_type, owner_id, prefix))
    with db.read() as conn:
        rows = conn.execute(query.order_by(_a.path)).all()
    return [FileRow(r.path, r.blob_hash, r.size) for r in rows]


def file_at(db: Database, owner_type: str, owner_id: str, path: str) -> FileRow | None:
    with db.read() as conn:
        row = conn.execute(
            sa.select(_a.path, _a.blob_hash, _a.size).where(
                _a.owner_type == owner_type, _a.owner_id == owner_id, _a.path == path
            )
        ).first()
    return None if row is None else FileRow(row.path, row.blob_hash, row.size)


def children(files: list[FileRow], prefix: str) -> list[Entry]:
    """The immediate children of folder ``prefix`` among ``files`` (all below it), by name."""
    cut = len(prefix) + 1 if prefix else 0
    found: dict[str, Entry] = {}
    for row in files:
        name, slash, _rest = row.path[cut:].partition("/")
        if slash:
            found[name] = Entry(name, True, None)
        else:
            found.setdefault(name, Entry(name, False, row.size))
    return [found[name] for name in sorted(found)]


def put_file(
    store: Store, owner_type: str, owner_id: str, path: str, local: str | os.PathLike[str]
) -> FileRow:
    """Store ``local`` as the owner's file at ``path`` (replacing one there)."""
    info = store.blobs.put_file(local)
    now = now_ms()
    with store.db.write() as conn:
        insert_ignore(conn, t.blobs, [{"hash": info.hash, "size": info.size, "created_at": now}])
        upsert(
            conn,
            t.artifacts,
            [
                {
                    "owner_type": owner_type,
                    "owner_id": owner_id,
                    "path": path,
                    "blob_hash": info.hash,
                    "size": info.size,
                    "created_at": now,
                }
            ],
            update=["blob_hash", "size", "created_at"],
        )
    return FileRow(path, info.hash, info.size)


def delete_tree(conn: sa.Connection, owner_type: str, owner_id: str, prefix: str = "") -> int:
    """Forget the owner's files at or below ``prefix`` (the blobs stay until gc)."""
    where = [_a.owner_type == owner_type, _a.owner_id == owner_id]
    if prefix:
        where.append(sa.or_(_a.path == prefix, _a.path.startswith(prefix + "/", autoescape=True)))
    return conn.execute(t.artifacts.delete().where(*where)).rowcount


def copy_tree(
    conn: sa.Connection, files: list[FileRow], prefix: str, owner_type: str, owner_id: str
) -> None:
    """Record ``files`` (below ``prefix``) as the owner's, relative to ``prefix``: no bytes move."""
    cut = len(prefix) + 1 if prefix else 0
    now = now_ms()
    rows = [
        {
            "owner_type": owner_type,
            "owner_id": owner_id,
            "path": f.path[cut:],
            "blob_hash": f.blob_hash,
            "size": f.size,
            "created_at": now,
        }
        for f in files
    ]
    insert_ignore(conn, t.artifacts, rows)
