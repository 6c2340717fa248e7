"""A new SQLite store is built from schema.py without Alembic; it must equal the migrated one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from loopwright.store.database import Database
from loopwright.store.migrate import HEAD_REVISION, current_revision, ensure_schema, upgrade


def _describe(path: Path) -> dict[str, object]:
    """Every table's columns, indexes, foreign keys and rows, by name (a migration adds columns
    at the end, so positions may differ; SQLite numbers its automatic indexes in order)."""
    conn = sqlite3.connect(path)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        described: dict[str, object] = {}
        for (table,) in conn.execute(query).fetchall():
            columns = conn.execute(f"PRAGMA table_info('{table}')").fetchall()
            indexes = []
            for _, name, unique, origin, _ in conn.execute(f"PRAGMA index_list('{table}')"):
                shown = None if name.startswith("sqlite_autoindex_") else name
                keys = [row[2] for row in conn.execute(f"PRAGMA index_info('{name}')")]
                indexes.append((shown, unique, origin, keys))
            keys = conn.execute(f"PRAGMA foreign_key_list('{table}')").fetchall()
            names = [column[1] for column in columns]
            rows = conn.execute(f"SELECT * FROM '{table}'").fetchall()
            described[table] = {
                "columns": sorted(column[1:] for column in columns),
                "indexes": sorted(indexes, key=repr),
                "foreign_keys": sorted(key[2:] for key in keys),
                "rows": sorted((sorted(zip(names, row, strict=True)) for row in rows), key=repr),
            }
        return described
    finally:
        conn.close()


def test_a_new_sqlite_store_equals_one_built_by_the_migrations(tmp_path: Path) -> None:
    fast, migrated = tmp_path / "fast.db", tmp_path / "migrated.db"
    db = Database.open(f"sqlite:///{fast}")
    ensure_schema(db)
    assert current_revision(db) == HEAD_REVISION
    db.dispose()
    db = Database.open(f"sqlite:///{migrated}")
    assert upgrade(db) == HEAD_REVISION  # Alembic, every migration in turn
    db.dispose()
    assert _describe(fast) == _describe(migrated)


def test_a_new_sqlite_store_opens_without_importing_alembic(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from loopwright.store.database import Database\n"
        "from loopwright.store.migrate import ensure_schema\n"
        f"db = Database.open('sqlite:///{tmp_path / 'new.db'}')\n"
        "ensure_schema(db)\n"
        "ensure_schema(db)\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_sqlite_file_with_other_tables_goes_through_the_migrations(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    db = Database.open(f"sqlite:///{path}")
    ensure_schema(db)
    assert current_revision(db) == HEAD_REVISION
    with db.read() as conn:
        assert sa.inspect(conn).has_table("unrelated")
    db.dispose()
