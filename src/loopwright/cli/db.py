"""``loopwright db``: schema migrations for shared (server) databases."""

from __future__ import annotations

from typing import Annotated

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, handle_errors

__all__ = ["app"]

app = typer.Typer(help="Metadata database schema.", no_args_is_help=True)


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply pending migrations (servers run this on deploy; embedded stores do it on open)."""
    from ..store.database import Database
    from ..store.migrate import current_revision
    from ..store.migrate import upgrade as run_upgrade

    with handle_errors():
        settings = state(ctx).local_settings("db upgrade")
        db = Database.open(settings.db_uri)
        try:
            before = current_revision(db)
            after = run_upgrade(db, revision)
        finally:
            db.dispose()
    console().print(f"{db.url}: schema {before or '(empty)'} -> {after}")


@app.command()
def current(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Show the database's schema revision and the newest this Loopwright knows."""
    import sqlalchemy as sa

    from ..store.database import Database, normalize_db_uri, sqlite_file
    from ..store.migrate import HEAD_REVISION, current_revision

    with handle_errors():
        uri = state(ctx).local_settings("db current").db_uri
        path = sqlite_file(uri)
        if path is not None and not path.exists():
            # Opening would create the file and its folders: report, leave no database behind.
            url = sa.make_url(normalize_db_uri(uri)).render_as_string(hide_password=True)
            revision = None
        else:
            db = Database.open(uri)
            url = db.url
            try:
                revision = current_revision(db)
            finally:
                db.dispose()
    if json_output:
        emit_json({"db": url, "revision": revision, "head": HEAD_REVISION})
        return
    status = "up to date" if revision == HEAD_REVISION else "needs `loopwright db upgrade`"
    console().print(f"{url}: schema {revision or '(empty)'}, newest {HEAD_REVISION} ({status})")
