"""``loopwright predictions``: the prediction log: list, show, compact, prune.

Embedded, on the log ``loopwright serve`` writes here (the ``prediction_log`` setting, else the
blob store's ``predictions/``), without opening the metadata store: a package folder served with
no store logs there too, and reading the log must not create a store. With ``--server``, through
``client.prediction_log`` on the server's log (compact and prune need an admin there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, fail, handle_errors, print_table

if TYPE_CHECKING:
    import pandas as pd

    from ..serving import Predictions

__all__ = ["app"]

app = typer.Typer(
    help="The prediction log of served requests: list, show, compact, prune.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_SHOWN = ("timestamp", "request_id", "row", "variant", "model_version", "latency_ms", "status")


def parse_duration(text: str, option: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as a timedelta; a clear error otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        fail(f"{option} {text!r} is not a duration; write e.g. 30d, 12h, 90m, 45s or 2w")
        raise AssertionError("unreachable")
    try:
        return timedelta(**{_UNITS[match[2].lower()]: float(match[1])})
    except OverflowError:
        fail(f"{option} {text!r} is longer than a time span can be; at most 999999999d")
        raise AssertionError("unreachable") from None


def parse_moment(text: str, option: str) -> datetime | timedelta:
    """A duration before now (``1h``) or an ISO 8601 time (``2026-12-05T10``; without a zone,
    UTC)."""
    if _DURATION.fullmatch(text.strip()):
        return parse_duration(text, option)
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", value):
        value += ":00"  # an hour, as the log's folders name them
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(
            f"{option} {text!r} is neither a duration (1h, 30d) nor a time "
            "(2026-12-05T10, 2026-12-05T10:30:00+00:00)"
        )
        raise AssertionError("unreachable") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@contextmanager
def _log(ctx: typer.Context) -> Iterator[Predictions]:
    settings = state(ctx).settings()
    if settings.is_embedded:
        from ..serving.prediction_log import log_location
        from ..serving.predictions import PredictionService

        yield PredictionService(log_location(settings))
        return
    with state(ctx).client() as client:
        yield client.prediction_log


@app.command("list")
def list_logged(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Deployments in the log with their rows, files and time span."""
    with handle_errors(), _log(ctx) as log:
        found = log.deployments()
    if json_output:
        emit_json(
            [
                {"name": d.name, "rows": d.rows, "files": d.files, "first": d.first, "last": d.last}
                for d in found
            ]
        )
        return
    print_table(
        "Prediction log",
        ["deployment", "rows", "files", "first (UTC)", "last (UTC)"],
        [(d.name, f"{d.rows:,}", d.files, _time(d.first), _time(d.last)) for d in found],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="The deployment (or model served alone).")],
    since: Annotated[
        str | None, typer.Option("--since", help="1h (that long ago) or 2026-12-05T10:30.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="As --since; excluded.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N rows.")] = 20,
    columns: Annotated[
        str | None,
        typer.Option("--columns", help="Comma-separated columns, e.g. request_id,input.age."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """The newest logged rows of DEPLOYMENT, oldest first (inputs and outputs included)."""
    low = None if since is None else parse_moment(since, "--since")
    high = None if until is None else parse_moment(until, "--until")
    picked = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    with handle_errors(), _log(ctx) as log:
        frame = log.read(deployment, since=low, until=high, columns=picked, limit=limit)
    if json_output:
        emit_json(_records(frame))
        return
    if frame.empty:
        console(stderr=True).print(f"no logged rows for {deployment!r} in that window")
        return
    shown = list(frame.columns) if picked else _default_columns(frame)
    rows = [[_cell(value) for value in row] for row in frame[shown].itertuples(index=False)]
    print_table(f"{deployment}: {len(frame)} rows", shown, rows)


@app.command("compact")
def compact(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Argument(help="One deployment (default: all).")] = None,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            help="Merge hours starting before this hour (2026-12-05T10); default: hours "
            "that ended over ten minutes ago.",
        ),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Merge each closed hour's small files into one file per hour (crash-safe).

    A second compaction or prune of the same log, from any process, is refused while one runs."""
    limit = None if before is None else parse_moment(before, "--before")
    if isinstance(limit, timedelta):
        ago = limit
        try:
            limit = datetime.now(UTC) - ago
        except OverflowError:  # before year 1 (or after 9999): the first or last moment
            limit = (datetime.min if ago > timedelta(0) else datetime.max).replace(tzinfo=UTC)
    with handle_errors(), _log(ctx) as log:
        done = log.compact(deployment, before=limit)
    if json_output:
        emit_json({"hours": done.hours, "files_merged": done.files_merged, "rows": done.rows})
        return
    console().print(
        f"compacted {done.hours} hour(s): {done.files_merged} files into {done.hours}, "
        f"{done.rows:,} rows"
    )


@app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Retention, e.g. 30d: older hours are deleted.")
    ],
    deployment: Annotated[
        str | None, typer.Option("--deployment", help="One deployment (default: all).")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Delete the hours of the log that ended more than --older-than ago."""
    age = parse_duration(older_than, "--older-than")
    with handle_errors(), _log(ctx) as log:
        done = log.prune(age, deployment=deployment)
    if json_output:
        emit_json({"hours": done.hours, "files": done.files})
        return
    console().print(f"pruned {done.hours} hour(s), {done.files} file(s)")


def _default_columns(frame: pd.DataFrame) -> list[str]:
    fixed = [c for c in _SHOWN if c in frame.columns]
    logged = [c for c in frame.columns if c.startswith(("input.", "output."))]
    return fixed + logged


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "tolist"):  # a list cell (predict_proba ...) arrives as an array
        return str(value.tolist())
    return "" if value is None else str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (v.tolist() if hasattr(v, "tolist") else v) for k, v in row.items()}
        for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    ]


def _time(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
