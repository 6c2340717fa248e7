"""``loopwright labels``: late ground truth for a deployment's logged predictions, joined to the
prediction log by request id. Works embedded and with ``--server`` (``client.log_labels``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, format_ms, handle_errors, print_table
from .predictions import parse_moment

__all__ = ["app"]

app = typer.Typer(
    help="Late labels (ground truth) for logged predictions: import, show.",
    no_args_is_help=True,
)


@app.command("import")
def import_labels(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Parquet or CSV with request_id, label and optionally row.")
    ],
    deployment: Annotated[str, typer.Option("--deployment", help="Whose predictions.")],
    json_output: bool = JSON_OPTION,
) -> None:
    """Store the labels of FILE (a label given again replaces the earlier one)."""
    from ..monitoring._labels import read_label_file

    with handle_errors():
        frame = read_label_file(file)
        with state(ctx).client() as client:
            done = client.log_labels(deployment, frame)
    if json_output:
        emit_json({"deployment": done.deployment, "rows": done.rows, "updated": done.updated})
        return
    console().print(
        f"{done.rows:,} label(s) stored for {done.deployment!r} ({done.updated:,} replaced "
        "earlier ones)",
        markup=False,
    )


@app.command("show")
def show(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="The deployment.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Logged since: 1d (ago) or 2026-12-05T10:30.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="As --since; excluded.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N labels.")] = 20,
    json_output: bool = JSON_OPTION,
) -> None:
    """The labels stored for DEPLOYMENT, newest last."""
    low = None if since is None else parse_moment(since, "--since")
    high = None if until is None else parse_moment(until, "--until")
    with handle_errors(), state(ctx).client() as client:
        frame = client.monitoring.labels(deployment, since=low, until=high)
    total = len(frame)
    frame = frame.tail(limit)
    records: list[dict[str, Any]] = [
        {str(k): _plain(v) for k, v in row.items()}
        for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    ]
    if json_output:
        emit_json(records)
        return
    if not records:
        console(stderr=True).print(f"no labels for {deployment!r} in that span", markup=False)
        return
    print_table(
        f"{deployment}: {total:,} label(s), the newest {len(records)}",
        ["request_id", "row", "label", "logged (UTC)"],
        [
            [r.get("request_id"), r.get("row"), r.get("label"), _when(r.get("logged_at"))]
            for r in records
        ],
    )


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str | bytes) else value


def _when(value: Any) -> str:
    if isinstance(value, int):
        return format_ms(value)
    return "" if value is None else str(value)
