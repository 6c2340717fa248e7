"""The metadata store on SQLite and PostgreSQL: opening, migrations, transactions."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.errors import ConfigError, MigrationError
from loopwright.store import schema
from loopwright.store.database import Database, normalize_db_uri
from loopwright.store.migrate import HEAD_REVISION, current_revision, ensure_schema, upgrade


def test_fresh_store_opens_at_head_quickly(db_uri: str) -> None:
    started = time.perf_counter()
    db = Database.open(db_uri)
    ensure_schema(db)
    elapsed = time.perf_counter() - started
    try:
        assert current_revision(db) == HEAD_REVISION
        tables = set(sa.inspect(db.engine).get_table_names())
        assert set(schema.metadata.tables) <= tables
        # Generous bound: the issue asks for "well under a second"; the benchmark measures it.
        assert elapsed < 10
    finally:
        db.dispose()


def test_reopening_a_current_store_is_a_no_op(db_uri: str) -> None:
    db = Database.open(db_uri)
    ensure_schema(db)
    with db.write() as conn:
        conn.execute(
            schema.users.insert(), {"id": "u1", "name": "ada", "role": "admin", "created_at": 1}
        )
    ensure_schema(db)
    assert upgrade(db) == HEAD_REVISION
    with db.read() as conn:
        assert conn.execute(sa.select(schema.users.c.name)).scalars().all() == ["ada"]
    db.dispose()


def test_migrations_build_exactly_the_declared_schema(db_uri: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database.open(db_uri)
    ensure_schema(db)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, schema.metadata)
    db.dispose()
    assert differences == [], "schema.py and the migrations disagree; add a migration"


def test_head_revision_constant_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from loopwright.store import migrate

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_store_written_by_a_newer_loopwright_is_refused(sqlite_uri: str) -> None:
    db = Database.open(sqlite_uri)
    ensure_schema(db)
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(MigrationError, match="newer Loopwright"):
        ensure_schema(db)
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_uri: str) -> None:
    db = Database.open(sqlite_uri)
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_a_failed_write_transaction_rolls_back(db_uri: str) -> None:
    db = Database.open(db_uri)
    ensure_schema(db)
    row = {"id": "e1", "name": "exp", "lifecycle_stage": "active", "created_at": 1, "updated_at": 1}
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute(schema.experiments.insert(), row)
        raise RuntimeError("boom")
    with db.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.experiments)).scalar() == 0
        )
    db.dispose()


def test_foreign_keys_are_enforced(db_uri: str) -> None:
    db = Database.open(db_uri)
    ensure_schema(db)
    with pytest.raises(sa.exc.IntegrityError), db.write() as conn:
        conn.execute(schema.params.insert(), {"run_id": "missing", "key": "k", "value": "v"})
    db.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_db_uri("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_db_uri("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_db_uri("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ConfigError, match="not a database URL"):
        normalize_db_uri("x.db")


def test_blob_reference_columns_are_discovered() -> None:
    names = {f"{c.table.name}.{c.name}" for c in schema.blob_ref_columns()}
    assert {"artifacts.blob_hash", "runs.git_diff_blob"} <= names
