"""Alembic environment: runs on the connection that ``loopwright.store.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from loopwright.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    # One transaction for the whole upgrade on SQLite too, so concurrent openers queue on it.
    transactional_ddl=True,
    compare_type=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Concurrent upgraders wait here; the loser then finds the schema already current.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
    context.run_migrations()
