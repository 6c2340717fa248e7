"""Schema migrations: applied when an embedded store opens, or by ``loopwright db upgrade``.

Opening a store that is already current costs one small query; Alembic is imported only when
there is something to do.
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
HEAD_REVISION = "0006"

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
        if not sa.inspect(conn).has_table("alembic_version"):
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
    if revision is not None and not _is_known(revision):
        raise MigrationError(
            f"the database {db.url} has schema revision {revision!r}, which this version of "
            "Loopwright does not know: it was written by a newer Loopwright; upgrade loopwright"
        )
    upgrade(db)


def _is_known(revision: str) -> bool:
    return any(
        path.name.startswith(f"{revision}_")
        for path in (_SCRIPT_LOCATION / "versions").glob("*.py")
    )
