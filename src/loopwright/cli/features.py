"""``loopwright features``: apply feature definitions, read them, build training sets, load and
read the online store, and check freshness and training/serving skew.

Every command works through ``client.features``, so ``--server`` works. Definitions are read
on this machine (``apply PATH``: a .py file, a YAML file or a folder of them; default
``./features``, else ``features.py`` / ``features.yaml``) and sent as specs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import (
    JSON_OPTION,
    console,
    emit_json,
    fail,
    format_ms,
    format_number,
    handle_errors,
    print_table,
)
from ._progress import progress_bar
from .predictions import parse_moment

if TYPE_CHECKING:
    from ..features.entities import ApplyPlan, FeatureDefinition, Materialization, SkewReport
    from ..features.spec import Kind

__all__ = ["app", "default_path", "parse_entity"]

app = typer.Typer(
    help="Feature store: definitions, point-in-time training sets, the online store, "
    "freshness and skew checks.",
    no_args_is_help=True,
)

DEFAULT_PATHS = ("features", "features.py", "features.yaml", "features.yml")

_KIND = Annotated[
    str | None,
    typer.Option(
        "--kind",
        help="entity, feature_view, on_demand_feature_view or feature_service.",
    ),
]
_FEATURES = Annotated[
    list[str] | None,
    typer.Option("--features", help="Feature refs VIEW:FEATURE (VIEW:* for all); repeat or comma."),
]
_SERVICE = Annotated[
    str | None, typer.Option("--service", help="A feature service, NAME or NAME@vN.")
]
_FULL_NAMES = Annotated[
    bool,
    typer.Option("--full-names", help="Name feature columns VIEW__FEATURE."),
]


def default_path(cwd: Path) -> Path:
    """Where ``features apply`` reads without a PATH: the first of :data:`DEFAULT_PATHS`."""
    for name in DEFAULT_PATHS:
        if (cwd / name).exists():
            return cwd / name
    fail(
        f"no feature definitions in {cwd}: give a PATH, or create a features/ folder, "
        "features.py or features.yaml"
    )
    raise AssertionError("unreachable")


def _kind(value: str | None) -> Kind | None:
    from ..features.spec import KINDS

    if value is None:
        return None
    if value not in KINDS:
        fail(f"--kind {value!r} is not one of: {', '.join(KINDS)}")
    return value  # type: ignore[return-value]


def _names(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated option values as one list."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def _selection(features: Sequence[str] | None, service: str | None) -> str | list[str]:
    refs = _names(features)
    if bool(refs) == (service is not None):
        fail("name the features with either --service NAME[@vN] or --features VIEW:FEATURE")
    return service if service is not None else refs


def parse_entity(text: str) -> dict[str, Any]:
    """``driver_id=1001`` or ``driver_id=1001,customer=c7`` as one entity row; values are JSON
    (numbers, true/false, "quoted") or else text."""
    row: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            fail(f"--entity {text!r} is not KEY=VALUE[,KEY=VALUE...] (e.g. driver_id=1001)")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        row[key.strip()] = value
    return row


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    moment = parse_moment(text, option)
    return datetime.now(UTC) - moment if isinstance(moment, timedelta) else moment


def _definition_dict(d: FeatureDefinition) -> dict[str, Any]:
    return d.to_dict() | {"ref": d.ref}


# --- definitions -------------------------------------------------------------------------------


def _print_plan(plan: ApplyPlan) -> None:
    rows = [
        [
            c.kind,
            c.name,
            c.change,
            f"{'-' if c.from_version is None else f'v{c.from_version}'} -> "
            f"{'-' if c.to_version is None else f'v{c.to_version}'}",
            "; ".join(c.breaking) if c.breaking else "",
        ]
        for c in plan.changes
    ]
    print_table("Plan", ["kind", "name", "change", "from -> to", "breaking"], rows)
    out = console()
    # An add's diff is its whole spec (the table already lists it): only updates show one.
    for change in plan.changed:
        if change.change == "update" and change.diff:
            from rich.syntax import Syntax

            out.print(f"[bold]{change.kind} {change.name}[/]")
            out.print(Syntax(change.diff, "diff", theme="ansi_dark", background_color="default"))


@app.command("apply")
def apply(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(help="A .py or YAML file or a folder of them (default: ./features)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Apply breaking changes (types, keys, removals).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and diffs; change nothing.")
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Validate the definitions, print the plan and diffs, then apply them (new versions where
    their content changed; the same text again changes nothing)."""
    from ..features._collect import load_specs

    with handle_errors():
        source = path if path is not None else default_path(Path.cwd())
        specs = load_specs(source)
        with state(ctx).client() as client:
            plan = client.features.plan(specs)
            if not json_output:
                _print_plan(plan)
            if plan.breaking and not force:
                reasons = [f"{c.kind} {c.name}: {r}" for c in plan.breaking for r in c.breaking]
                if json_output:
                    emit_json(plan.to_dict())
                fail(
                    "breaking changes (pass --force to apply them):\n"
                    + "\n".join(f"  - {r}" for r in reasons)
                )
            if not dry_run and plan.changed:
                plan = client.features.apply(specs, force=force)
    if json_output:
        emit_json(plan.to_dict())
        return
    if dry_run:
        console().print(f"dry run: {len(plan.changed)} change(s) planned, nothing applied")
    elif plan.changed:
        console().print(f"applied {len(plan.changed)} change(s)")
    else:
        console().print("no changes: every definition is up to date")


@app.command("list")
def list_definitions(
    ctx: typer.Context, kind: _KIND = None, json_output: bool = JSON_OPTION
) -> None:
    """The newest version of every definition (of --kind)."""
    with handle_errors(), state(ctx).client() as client:
        found = client.features.list(_kind(kind))
    if json_output:
        emit_json([_definition_dict(d) for d in found])
        return
    print_table(
        "Feature definitions",
        ["kind", "name", "version", "created by", "created (UTC)"],
        [[d.kind, d.name, f"v{d.version}", d.created_by, format_ms(d.created_at)] for d in found],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (the newest version) or NAME@vN.")],
    kind: _KIND = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """One definition version and its spec."""
    with handle_errors(), state(ctx).client() as client:
        found = client.features.get(ref, kind=_kind(kind))
    if json_output:
        emit_json(_definition_dict(found))
        return
    console().print(
        f"[bold]{found.kind} {found.ref}[/] by {found.created_by} at {format_ms(found.created_at)}"
    )
    console().print_json(json.dumps(dict(found.spec), default=str))


@app.command("diff")
def diff(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Definition name.")],
    a: Annotated[int | None, typer.Argument(help="From version (default: the previous).")] = None,
    b: Annotated[int | None, typer.Argument(help="To version (default: the newest).")] = None,
    kind: _KIND = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """A unified diff of two versions' specs."""
    with handle_errors(), state(ctx).client() as client:
        text = client.features.diff(name, a, b, kind=_kind(kind))
    if json_output:
        emit_json({"name": name, "a": a, "b": b, "diff": text})
        return
    if text:
        typer.echo(text.rstrip("\n"))
    else:
        console().print("no differences")


# --- offline store -----------------------------------------------------------------------------


@app.command("historical")
def historical(
    ctx: typer.Context,
    entities: Annotated[
        str,
        typer.Option(
            "--entities",
            help="Entity rows: a Parquet or CSV file, or a dataset version (NAME@vN).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the training set (Parquet).")],
    features: _FEATURES = None,
    service: _SERVICE = None,
    timestamp_field: Annotated[
        str, typer.Option("--timestamp-field", help="The entity rows' time column.")
    ] = "event_timestamp",
    full_names: _FULL_NAMES = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """A point-in-time correct training set written to --out."""
    selection = _selection(features, service)
    with handle_errors():
        rows = _entity_rows(entities)
        with state(ctx).client() as client:
            found = client.features.get_historical_features(
                rows,
                selection,
                timestamp_field=timestamp_field,
                full_feature_names=full_names,
                dest=out.parent,  # beside --out: renamed into place, never copied
            )
        found.path.replace(out)
    shown = found.to_dict() | {"path": str(out)}
    if json_output:
        emit_json(shown)
        return
    console().print(
        f"{found.rows:,} rows x {len(found.columns)} columns -> {out} "
        f"(views: {', '.join(f'{k}@v{v}' for k, v in found.views.items())})"
    )


def _entity_rows(text: str) -> Any:
    path = Path(text)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(path)
        return path
    if "@" in text or ("/" not in text and "." not in text):
        return text  # a dataset ref, read by the store
    fail(f"--entities {text!r} is neither a file nor a dataset version (NAME@vN)")
    raise AssertionError("unreachable")


# --- online store ------------------------------------------------------------------------------


def _materialization_row(m: Materialization) -> list[Any]:
    return [
        m.view,
        f"v{m.view_version}",
        m.mode,
        format_ms(m.start_at),
        format_ms(m.end_at),
        f"{m.rows:,}",
        format_ms(m.newest_event_at),
    ]


_MATERIALIZATION_COLUMNS = ["view", "version", "mode", "start", "end", "rows", "newest event"]


@app.command("materialize")
def materialize(
    ctx: typer.Context,
    views: Annotated[
        list[str] | None, typer.Argument(help="Views to load (default: every online view).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="From (ISO time or a duration ago: 7d).")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Until (default: now).")] = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="From each view's last materialization.")
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Load each view's newest row per entity into the online store."""
    if incremental and start is not None:
        fail("--incremental starts at each view's watermark; drop --start")
    low, high = _time(start, "--start"), _time(end, "--end")
    shown = not json_output and console(stderr=True).is_terminal
    with (
        handle_errors(),
        state(ctx).client() as client,
        progress_bar("materializing (rows)", None, shown) as update,
    ):
        done = client.features.materialize(
            views or None,
            start=low,
            end=high,
            incremental=incremental,
            progress=lambda rows: update(advance=rows),
        )
    if json_output:
        emit_json([m.to_dict() for m in done])
        return
    print_table("Materialized", _MATERIALIZATION_COLUMNS, [_materialization_row(m) for m in done])


@app.command("materializations")
def materializations(
    ctx: typer.Context,
    view: Annotated[str | None, typer.Option("--view", help="Only this view's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    json_output: bool = JSON_OPTION,
) -> None:
    """Recent loads into the online store, newest first."""
    with handle_errors(), state(ctx).client() as client:
        found = client.features.materializations(view, limit=limit)
    if json_output:
        emit_json([m.to_dict() for m in found])
        return
    print_table(
        "Materializations", _MATERIALIZATION_COLUMNS, [_materialization_row(m) for m in found]
    )


@app.command("online")
def online(
    ctx: typer.Context,
    entity: Annotated[
        list[str],
        typer.Option("--entity", help="One entity row, KEY=VALUE[,KEY=VALUE]; repeat for more."),
    ],
    features: _FEATURES = None,
    service: _SERVICE = None,
    full_names: _FULL_NAMES = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """The online store's values for the entity rows."""
    selection = _selection(features, service)
    rows = [parse_entity(text) for text in entity]
    with handle_errors(), state(ctx).client() as client:
        found = client.features.get_online_features(rows, selection, full_feature_names=full_names)
    if json_output:
        emit_json(found.to_dict())
        return
    columns = list(found.values)
    table = [
        [_cell(found.values[c][i], found.statuses.get(c, [None] * len(rows))[i]) for c in columns]
        for i in range(len(rows))
    ]
    print_table("Online features", columns, table)


def _cell(value: Any, status: str | None) -> str:
    if status is not None and status != "present":
        return status
    return format_number(value) if isinstance(value, float) else str(value)


@app.command("freshness")
def freshness(
    ctx: typer.Context,
    views: Annotated[
        list[str] | None, typer.Argument(help="Views (default: every online view).")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Per online view, the newest event time loaded, its age, and whether it is stale (older
    than its TTL). A report, not a check: stale views exit 0 too."""
    from ..features.freshness import check

    with handle_errors(), state(ctx).client() as client:
        found = client.features.freshness(views or None)
    verdicts = check(found)
    if json_output:
        emit_json([f.to_dict() | {"stale": v.stale} for f, v in zip(found, verdicts, strict=True)])
        return
    print_table(
        "Freshness",
        ["view", "store", "newest event", "age (s)", "last loaded", "ttl (s)", "stale"],
        [
            [
                f.view,
                f.store,
                format_ms(f.newest_event_at),
                format_number(f.age_seconds, 4),
                format_ms(f.last_loaded_at),
                f.ttl_seconds,
                # No TTL: no threshold, so neither stale nor known fresh.
                "-" if v.threshold_seconds is None else "yes" if v.stale else "no",
            ]
            for f, v in zip(found, verdicts, strict=True)
        ],
    )
    for verdict in verdicts:
        if verdict.stale:
            console().print(f"stale: {verdict.reason}")


# --- checks ------------------------------------------------------------------------------------


@app.command("skew")
def skew(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="The deployment whose predictions to check.")],
    sample: Annotated[int, typer.Option("--sample", min=1, help="Predictions compared.")] = 1000,
    since: Annotated[str | None, typer.Option("--since", help="ISO time or duration ago.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO time or duration ago.")] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="Relative tolerance for numbers.")
    ] = 1e-6,
    json_output: bool = JSON_OPTION,
) -> None:
    """Served features (the prediction log) against the offline store's, per feature."""
    low, high = _time(since, "--since"), _time(until, "--until")
    with handle_errors(), state(ctx).client() as client:
        report = client.features.skew(
            deployment, sample=sample, since=low, until=high, tolerance=tolerance
        )
    if json_output:
        emit_json(report.to_dict())
        return
    print_table(
        f"Skew of {report.deployment} ({report.service}, {report.sampled} sampled)",
        ["feature", "compared", "mismatched", "rate", "missing online", "missing offline"],
        [
            [
                f.feature,
                f.compared,
                f.mismatched,
                format_number(f.mismatch_rate, 4),
                f.missing_online,
                f.missing_offline,
            ]
            for f in report.features
        ],
    )
    _print_skew_examples(report)


def _print_skew_examples(report: SkewReport, per_feature: int = 3) -> None:
    """A few mismatched rows under the table: the entity key, the prediction's time and both
    values, so a mismatch can be looked up."""
    out = console()
    for item in report.features:
        for example in item.examples[:per_feature]:
            key = ", ".join(f"{k}={v}" for k, v in dict(example.get("key") or {}).items())
            out.print(
                f"{item.feature} [{key or 'no key'}] at {format_ms(example.get('time'))}: "
                f"served {example.get('served')!r}, offline {example.get('offline')!r}",
                markup=False,
            )
