"""Schema migrations: applied when an embedded store opens, or by ``loopwright db upgrade``.

Opening a store that is already current costs one small query; Alembic is imported only when
there is something to migrate. A new, empty SQLite store is built straight from ``schema.py`` and
stamped at the head revision, in one transaction: the tables the migrations would build (a test
builds a store both ways and compares every table, column, index, key and row), without the
half second that importing Alembic and replaying every migration costs a first ``data add``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._logging import get_logger
from ..errors import MigrationError

if TYPE_CHECKING:
    from alembic.config import Config

    from .database import Database

__all__ = ["HEAD_REVISION", "current_revision", "ensure_schema", "upgrade"]

# The newest migration in migrations/versions; a test checks it against Alembic's own view.
HEAD_REVISION = "0017"

_SCRIPT_LOCATION = Path(__file__).parent / "migrations"
_log = get_logger(__name__)


def _alembic_config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def current_revision(db: Database) -> str | None:
    """The schema revision stored in the database, or None for an empty database."""
    with db.read() as conn:
        if db.dialect == "sqlite":  # cheaper than the inspector, on every embedded open
            found = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).first()
            if found is None:
                return None
        elif not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(db: Database, revision: str = "head") -> str:
    """Apply every pending migration up to ``revision``; returns the revision reached."""
    from alembic import command

    _log.info("migrating %s to %s", db.url, revision)
    try:
        with db.engine.connect() as conn:
            command.upgrade(_alembic_config(conn), revision)
    except sa.exc.SQLAlchemyError as exc:
        raise MigrationError(f"migrating {db.url} to {revision} failed: {exc}") from exc
    reached = current_revision(db)
    return reached or ""


def ensure_schema(db: Database) -> None:
    """Bring an embedded store to the newest schema; refuse one made by a newer Loopwright."""
    revision = current_revision(db)
    if revision == HEAD_REVISION:
        return
    if revision is None and db.dialect == "sqlite" and _create_empty_sqlite(db):
        return
    if revision is not None and not _is_known(revision):
        raise MigrationError(
            f"the database {db.url} has schema revision {revision!r}, which this version of "
            "Loopwright does not know: it was written by a newer Loopwright; upgrade loopwright"
        )
    upgrade(db)


def _create_empty_sqlite(db: Database) -> bool:
    """Build the head schema in an empty SQLite database; False (nothing done) if it has tables.

    The write transaction takes SQLite's write lock first, so two processes opening a new store
    together build it once: the second finds the tables and goes the Alembic way (a no-op).
    """
    from . import schema

    with db.write() as conn:
        if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
            return False
        schema.metadata.create_all(conn)
        # The table Alembic keeps, as Alembic creates it.
        conn.exec_driver_sql(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        conn.exec_driver_sql(
            "INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD_REVISION,)
        )
    return True


def _is_known(revision: str) -> bool:
    return any(
        path.name.startswith(f"{revision}_")
        for path in (_SCRIPT_LOCATION / "versions").glob("*.py")
    )
