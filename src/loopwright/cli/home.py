"""``loopwright init``, ``config`` and ``gc``: the home and its stores."""

from __future__ import annotations

from typing import Annotated

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, fail, handle_errors, print_table

__all__ = ["register"]


def init(
    ctx: typer.Context,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="Write a project instead: tabular-classifier (pipeline, gates, CI workflow, "
            "Dockerfile, monitor and loop setup).",
        ),
    ] = None,
    folder: Annotated[
        str | None,
        typer.Option("--dir", help="With --template: the project folder (default: here)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --template: overwrite files that exist.")
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Create a Loopwright home (database and blob store) here, or where settings point; with
    --template, write a project that uses one."""
    if template is not None:
        _write_project(template, folder, force=force, json_output=json_output)
        return
    if folder is not None or force:
        fail("--dir and --force go with --template NAME (plain init creates the home)")
    from ..store.home import open_store
    from ..store.migrate import current_revision

    with handle_errors():
        settings = state(ctx).settings()
        existed = settings.home.exists()
        with open_store(settings) as store:
            revision = current_revision(store.db)
    result = {
        "home": str(settings.home),
        "db_uri": settings.db_uri,
        "blob_uri": settings.blob_uri,
        "schema_revision": revision,
        "created": not existed,
    }
    if json_output:
        emit_json(result)
        return
    verb = "Created" if not existed else "Using existing"
    console().print(f"{verb} Loopwright home [bold]{settings.home}[/]")
    console().print(f"  database  {settings.db_uri} (schema {revision})")
    console().print(f"  blobs     {settings.blob_uri}")


def _write_project(template: str, folder: str | None, *, force: bool, json_output: bool) -> None:
    """``init --template``: the template's files, and what to run next."""
    from pathlib import Path

    from rich.markup import escape

    from ..templates import write_template

    target = Path(folder) if folder is not None else Path.cwd()
    with handle_errors():
        written = write_template(template, target, force=force)
    files = [str(path.relative_to(written.folder)) for path in written.files]
    if json_output:
        emit_json(
            {"template": template, "dir": str(written.folder), "name": written.name, "files": files}
        )
        return
    out = console()
    out.print(
        f"Wrote the {template} project [bold]{escape(written.name)}[/] in {escape(str(target))}:"
    )
    for name in files:
        out.print(f"  {escape(name)}")
    go = "" if folder is None else f"cd {folder} && "
    out.print(f"Next: {escape(go)}python make_data.py && loopwright init, then README.md step 1.")


def config(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Show every resolved setting and where it came from."""
    with handle_errors():
        settings = state(ctx).settings()
    rows = settings.describe()
    if json_output:
        emit_json(
            {key: {"value": value, "source": source} for key, value, source in rows}
            | {"config_file": str(settings.config_file) if settings.config_file else None}
        )
        return
    print_table("Loopwright settings", ["setting", "value", "source"], rows)
    if settings.config_file:
        console().print(f"config file: {settings.config_file}")


def gc(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", help="Delete the unreferenced blobs (default: only list them).")
    ] = False,
    grace_minutes: Annotated[
        int, typer.Option("--grace-minutes", min=0, help="Keep blobs younger than this.")
    ] = 60,
    json_output: bool = JSON_OPTION,
) -> None:
    """Find blobs no run, dataset or model references; delete them with --yes."""
    from ..store.gc import collect_garbage
    from ..store.home import open_store

    with handle_errors(), open_store(state(ctx).local_settings("gc")) as store:
        report = collect_garbage(store, dry_run=not yes, grace_ms=grace_minutes * 60_000)
    if json_output:
        emit_json(
            {
                "deleted": report.deleted,
                "bytes": report.bytes,
                "kept_young": report.kept_young,
                "kept_packed": report.kept_packed,
                "referenced": report.referenced,
                "blobs": [{"hash": b.hash, "size": b.size} for b in report.unreferenced],
            }
        )
        return
    out = console()
    count = len(report.unreferenced)
    if report.deleted:
        out.print(f"Deleted {count} unreferenced blob(s), {report.bytes:,} bytes.")
    else:
        out.print(f"{count} unreferenced blob(s), {report.bytes:,} bytes (dry run; --yes deletes).")
    if report.kept_packed:
        out.print(f"Kept {report.kept_packed} unreferenced small blob(s) inside packs.")
    if report.kept_young:
        out.print(f"Kept {report.kept_young} younger than {grace_minutes} minute(s).")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(config)
    app.command()(gc)
