"""``loopwright monitors traces``: monitors of LLM traffic (traces): create one, run a pass,
show it and its passes. Listing, reports, alerts and deleting go through the other
``monitors`` commands, as for any monitor.

Every command works through ``client.monitoring``, so ``--server`` works.
"""

from __future__ import annotations

import json
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
from .predictions import parse_duration, parse_moment

if TYPE_CHECKING:
    from ..monitoring.llm_entities import TraceMonitor, TraceMonitorRun

__all__ = ["app"]

app = typer.Typer(
    help="Monitors of LLM traffic: online scoring of sampled traces, drift of scores, lengths, "
    "tokens, cost and latency against the approved baseline, alerts that roll a prompt alias "
    "back or re-evaluate.",
    no_args_is_help=True,
)

_NAME = Annotated[str, typer.Argument(help="Monitor name.")]
_OPTIONAL = Annotated[str | None, typer.Option()]


def _monitor_dict(m: TraceMonitor) -> dict[str, Any]:
    return {
        "name": m.name,
        "id": m.monitor.id,
        "window_s": m.monitor.window_s,
        "every_s": m.monitor.every_s,
        "tests": list(m.monitor.tests),
        "thresholds": dict(m.monitor.thresholds),
        "alerts": [r.key for r in m.monitor.alerts],
        "webhook": m.monitor.webhook,
        "created_by": m.monitor.created_by,
        "created_at": m.monitor.created_at,
        "last_run_at": m.monitor.last_run_at,
        **m.to_dict(),
    }


def _run_dict(r: TraceMonitorRun) -> dict[str, Any]:
    run = r.run
    return {
        "id": run.id,
        "monitor": run.monitor,
        "status": run.status,
        "error": run.error,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "traces": run.rows,
        "prompt_versions": list(run.model_versions),
        "dataset_drift": None if run.drift is None else run.drift.dataset_drift,
        "drifted": [] if run.drift is None else list(run.drift.drifted_columns),
        "alerts": list(run.alerts),
        "scoring": None if r.scoring is None else r.scoring.to_dict(),
        "figures": dict(r.figures),
        "actions": [a.to_dict() for a in r.actions],
        "baseline": r.baseline,
    }


def _actions(
    rollback: bool,
    rollback_on: str | None,
    reevaluate: str | None,
    reevaluate_on: str | None,
    endpoint: str | None,
    model: str | None,
) -> list[Any]:
    from ..monitoring.llm_entities import AlertAction

    actions = []
    if rollback or rollback_on:
        actions.append(AlertAction("rollback", on=rollback_on))
    if reevaluate is not None:
        actions.append(
            AlertAction(
                "reevaluate", on=reevaluate_on, dataset=reevaluate, endpoint=endpoint, model=model
            )
        )
    elif reevaluate_on or endpoint or model:
        fail("--reevaluate-on, --endpoint and --model go with --reevaluate DATASET")
    return actions


@app.command("create")
def create(
    ctx: typer.Context,
    name: _NAME,
    route: Annotated[
        str | None, typer.Option("--route", help="Traces of this gateway route.")
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="Traces of a prompt: NAME, NAME/3 or NAME@ALIAS."),
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", help="Traces linked to this deployment.")
    ] = None,
    experiments: Annotated[
        list[str] | None, typer.Option("--experiment", help="Traces of this experiment id.")
    ] = None,
    scorers: Annotated[
        list[str] | None,
        typer.Option(
            "--scorer",
            help="A registered scorer (NAME or NAME/3) or a built-in "
            "('builtin:max_length:{\"limit\": 800}'); repeat for more.",
        ),
    ] = None,
    sample_rate: Annotated[
        float, typer.Option("--sample-rate", help="Share of traces scored, in (0, 1].")
    ] = 1.0,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline",
            help="approved (the alias version's evaluation run), evaluation:RUN_ID or "
            "window:SINCE/UNTIL.",
        ),
    ] = "approved",
    window: Annotated[str, typer.Option("--window", help="Each pass's window, e.g. 1h.")] = "1h",
    every: Annotated[
        str | None, typer.Option("--every", help="Run by run-due this often, e.g. 15m.")
    ] = None,
    tests: Annotated[
        list[str] | None, typer.Option("--tests", help="Drift tests, comma-separated (psi,ks).")
    ] = None,
    alerts: Annotated[
        list[str] | None,
        typer.Option("--alert", help="An alert rule, e.g. 'score.correctness<0.7'; repeat."),
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Any alert rolls the prompt alias back.")
    ] = False,
    rollback_on: Annotated[
        str | None, typer.Option("--rollback-on", help="Only this rule's alert rolls back.")
    ] = None,
    reevaluate: Annotated[
        str | None,
        typer.Option("--reevaluate", help="An alert re-evaluates the alias on this dataset."),
    ] = None,
    reevaluate_on: Annotated[
        str | None, typer.Option("--reevaluate-on", help="Only this rule's alert re-evaluates.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Re-evaluation's OpenAI-compatible base URL.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Re-evaluation's model (or gateway route).")
    ] = None,
    max_per_pass: Annotated[
        int, typer.Option("--max-per-pass", help="Traces scored per pass at most.")
    ] = 200,
    description: _OPTIONAL = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Create a monitor of LLM traffic (select with --route, --prompt, --deployment or
    --experiment)."""
    from ..monitoring.llm_entities import TraceSelection

    span = parse_duration(window, "--window")
    period = None if every is None else parse_duration(every, "--every")
    actions = _actions(rollback, rollback_on, reevaluate, reevaluate_on, endpoint, model)
    selection = TraceSelection(route, prompt, deployment, tuple(experiments or ()))
    chosen_tests = [t.strip() for item in tests or () for t in item.split(",") if t.strip()]
    with handle_errors(), state(ctx).client() as client:
        created = client.monitoring.create_trace_monitor(
            name,
            traces=selection,
            scorers=scorers or [],
            sample_rate=sample_rate,
            baseline=baseline,
            window=span,
            every=period,
            tests=chosen_tests,
            alerts=alerts or (),
            actions=actions,
            description=description,
            max_scored_per_pass=max_per_pass,
        )
    if json_output:
        emit_json(_monitor_dict(created))
        return
    console().print(
        f"trace monitor {created.name!r} created on {created.selection.describe()}: scorers "
        f"{', '.join(created.scorers)}, sample {created.sample_rate:g}, baseline "
        f"{created.baseline}",
        markup=False,
    )


@app.command("show")
def show(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """A trace monitor's settings."""
    with handle_errors(), state(ctx).client() as client:
        found = client.monitoring.get_trace_monitor(name)
    data = _monitor_dict(found)
    if json_output:
        emit_json(data)
        return
    rows = [[k, v if isinstance(v, str) else json.dumps(v)] for k, v in data.items()]
    print_table(f"trace monitor {name}", ["setting", "value"], rows)


@app.command("run")
def run(
    ctx: typer.Context,
    name: _NAME,
    at: Annotated[
        str | None,
        typer.Option("--at", help="End of the window: 1h (ago) or 2026-12-05T10:30; default now."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Run a pass: score the sample, compare with the baseline, alert and act."""
    from datetime import UTC, datetime, timedelta

    moment = None if at is None else parse_moment(at, "--at")
    end = datetime.now(UTC) - moment if isinstance(moment, timedelta) else moment
    with handle_errors(), state(ctx).client() as client:
        done = client.monitoring.run_trace_monitor(name, at=end)
    if json_output:
        emit_json(_run_dict(done))
    else:
        _print(done)
    if done.run.status == "failed":
        raise typer.Exit(1)


@app.command("history")
def history(
    ctx: typer.Context,
    name: _NAME,
    limit: Annotated[int, typer.Option("--limit", help="Passes to show, newest first.")] = 20,
    json_output: bool = JSON_OPTION,
) -> None:
    """The monitor's passes, newest first, with scoring and actions."""
    with handle_errors(), state(ctx).client() as client:
        runs = client.monitoring.trace_monitor_history(name, limit=limit)
    if json_output:
        emit_json([_run_dict(r) for r in runs])
        return
    rows = [
        [
            format_ms(r.run.window_end),
            r.run.status,
            r.run.rows,
            "-" if r.scoring is None else r.scoring.scored,
            "-" if r.run.drift is None else ", ".join(r.run.drift.drifted_columns) or "none",
            len(r.run.alerts),
            ", ".join(f"{a.kind}:{a.status}" for a in r.actions),
        ]
        for r in runs
    ]
    columns = ["window end", "status", "traces", "scored", "drifted", "alerts", "actions"]
    print_table(f"passes of {name}", columns, rows)


def _print(r: TraceMonitorRun) -> None:
    run = r.run
    window = f"{format_ms(run.window_start)} to {format_ms(run.window_end)} UTC"
    console().print(
        f"pass {run.id} of {run.monitor!r}: {run.status}, {run.rows:,} traces, {window}, "
        f"prompt versions: {', '.join(run.model_versions) or 'any'}",
        markup=False,
    )
    if run.error:
        console(stderr=True).print(f"error: {run.error}", markup=False)
    if run.drift is not None:
        drift = run.drift
        console().print(
            f"drift: {'DRIFT' if drift.dataset_drift else 'no drift'}; drifted: "
            f"{', '.join(drift.drifted_columns) or 'none'} ({drift.rule})",
            markup=False,
        )
        rows = [
            [t.column, t.test, format_number(t.statistic, 4), format_number(t.threshold, 4)]
            for t in drift.tests
            if t.drifted
        ]
        if rows:
            print_table("Drifted", ["figure", "test", "statistic", "threshold"], rows)
    if run.alerts:
        console().print(f"open alerts: {', '.join(run.alerts)}", markup=False)
    if r.baseline:
        console().print(f"baseline: {r.baseline}", markup=False)
    if r.scoring is not None:
        s = r.scoring
        console().print(
            f"scoring: {s.scored} trace(s) scored ({s.assessments} assessment(s)), "
            f"{s.already_scored} already scored, {s.remaining} waiting, {s.sampled} of "
            f"{s.traces} sampled",
            markup=False,
        )
        for error in s.errors:
            console(stderr=True).print(
                f"trace {error.trace_id}: scorer {error.scorer}: {error.error}", markup=False
            )
    for action in r.actions:
        console().print(
            f"action {action.kind} on alert {action.alert_id} ({action.rule}): {action.status}: "
            f"{action.detail}",
            markup=False,
        )
