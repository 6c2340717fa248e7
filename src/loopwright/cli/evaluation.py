"""``loopwright eval``: evaluation datasets, evaluation runs and their results, judge agreement,
and the registered scorers (with the approval of judge versions).

Example:
    $ loopwright eval add qa rows.jsonl          # records: {"inputs": {...}, "expectations": {...}}
    $ loopwright eval run qa --scorer exact_match --target mypkg.app:answer
    $ loopwright eval results
    $ loopwright eval agreement helpfulness qa --label helpful
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import InvalidInput
from ._context import state
from ._output import (
    JSON_OPTION,
    console,
    emit_json,
    format_ms,
    format_number,
    handle_errors,
    print_table,
)

if TYPE_CHECKING:
    from ..evaluation.entities import EvalDataset, EvaluationRun, ScorerVersion

__all__ = ["app"]

app = typer.Typer(
    help="Evaluation: datasets of records, evaluation runs with scorers and LLM judges.",
    no_args_is_help=True,
)
scorers_app = typer.Typer(help="Registered scorers and judges (versions, approval).")
app.add_typer(scorers_app, name="scorers")


def _dataset_dict(d: EvalDataset) -> dict[str, Any]:
    return {**asdict(d), "ref": d.ref}


def _run_dict(r: EvaluationRun) -> dict[str, Any]:
    return asdict(r)


def _scorer_dict(s: ScorerVersion) -> dict[str, Any]:
    return {**asdict(s), "approved": s.approved}


def _read_records(path: Path) -> list[Any]:
    """A JSON list, or JSON Lines (one record per line)."""
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise InvalidInput(f"{path}: not JSON or JSON Lines: {exc}") from exc
    if not isinstance(records, list):
        raise InvalidInput(f"{path}: expected a list of records")
    return records


@app.command("datasets")
def datasets(
    ctx: typer.Context,
    json_output: bool = JSON_OPTION,
) -> None:
    """Evaluation datasets: their current version, digest and record count."""
    with handle_errors(), state(ctx).client() as client:
        found = client.evaluation.search_datasets()
    if json_output:
        emit_json([_dataset_dict(d) for d in found])
        return
    print_table(
        "Evaluation datasets",
        ["name", "version", "records", "digest", "tags", "updated (UTC)"],
        [
            [
                d.name,
                d.ref or "",
                d.record_count,
                (d.digest or "")[:12],
                ", ".join(f"{k}={v}" for k, v in d.tags.items()),
                format_ms(d.updated_at),
            ]
            for d in found
        ],
    )


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The evaluation dataset (created if missing).")],
    path: Annotated[
        Path,
        typer.Argument(help="Records: a JSON list or JSON Lines.", exists=True, dir_okay=False),
    ],
    json_output: bool = JSON_OPTION,
) -> None:
    """Insert records, or merge them into those with the same inputs (a new version if any
    record changed)."""
    from ..errors import NotFound

    with handle_errors():
        records = _read_records(path)
        with state(ctx).client() as client:
            try:
                client.evaluation.get_dataset(name)
            except NotFound:
                client.evaluation.create_dataset(name)
            counts = client.evaluation.upsert_records(name, records)
    if json_output:
        emit_json(counts)
        return
    console().print(
        f"{counts['version']}: {counts['inserted']} inserted, {counts['updated']} updated "
        f"(digest {counts['digest'][:12]})"
    )


@app.command("records")
def records(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The evaluation dataset.")],
    json_output: bool = JSON_OPTION,
) -> None:
    """The current records of an evaluation dataset."""
    with handle_errors(), state(ctx).client() as client:
        found = client.evaluation.records(name)
    if json_output:
        emit_json([r.to_dict() for r in found])
        return
    print_table(
        f"Records of {name}",
        ["record", "inputs", "expectations", "outputs"],
        [
            [r.record_id, json.dumps(dict(r.inputs)), json.dumps(dict(r.expectations)), r.outputs]
            for r in found
        ],
    )


def _target(spec: str | None) -> Any:
    if spec is None:
        return None
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise InvalidInput(f"--target {spec!r} must be module:function")
    if "" not in sys.path:
        sys.path.insert(0, "")  # the working directory's modules, as `python -m` finds them
    try:
        found: Any = importlib.import_module(module)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"--target {spec!r}: {exc}") from exc
    return found


@app.command("run")
def run(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="The evaluation dataset.")],
    scorer: Annotated[
        list[str],
        typer.Option(
            "--scorer",
            help="A registered scorer (name or name/N) or a built-in (builtin:exact_match); "
            "repeat for several.",
        ),
    ],
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="module:function called with each record's inputs; without it the records' "
            "outputs are scored.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The run's name.")] = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="The experiment of the run.")
    ] = "evaluations",
    workers: Annotated[int, typer.Option("--workers", min=1, max=32)] = 4,
    require_approved: Annotated[
        bool,
        typer.Option("--require-approved", help="Refuse judges whose version is not approved."),
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Score the dataset's rows and record an evaluation run."""
    from ..evaluation import builtins

    with handle_errors():
        chosen: list[Any] = [
            builtins.build(s.removeprefix("builtin:"), {}) if s.startswith("builtin:") else s
            for s in scorer
        ]
        call = _target(target)
        with state(ctx).client() as client:
            result = client.evaluation.evaluate(
                call,
                dataset,
                chosen,
                name=name,
                experiment=experiment,
                max_workers=workers,
                require_approved=require_approved,
            )
    if json_output:
        emit_json(
            {
                "run_id": result.run_id,
                "dataset_digest": result.dataset_digest,
                "aggregates": dict(result.aggregates),
                "failed_rows": result.failed_rows,
                "rows": [r.to_dict() for r in result.rows],
            }
        )
        return
    _print_aggregates(f"Evaluation run {result.run_id}", result.aggregates)
    console().print(f"{len(result.rows)} rows, {result.failed_rows} with an error")


def _print_aggregates(title: str, aggregates: Any) -> None:
    print_table(title, ["metric", "value"], [[k, format_number(v)] for k, v in aggregates.items()])


@app.command("results")
def results(
    ctx: typer.Context,
    run_id: Annotated[
        str | None, typer.Argument(help="One evaluation run (its aggregates).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=1)] = 50,
    json_output: bool = JSON_OPTION,
) -> None:
    """Evaluation runs, newest first, or one run's aggregates."""
    with handle_errors(), state(ctx).client() as client:
        found = (
            [client.evaluation.get_evaluation(run_id)]
            if run_id
            else client.evaluation.evaluations(limit=limit)
        )
    if json_output:
        emit_json(_run_dict(found[0]) if run_id else [_run_dict(r) for r in found])
        return
    if run_id:
        _print_aggregates(f"Evaluation run {run_id} ({found[0].name})", found[0].aggregates)
        return
    print_table(
        "Evaluation runs",
        ["run", "name", "target", "dataset digest", "rows", "failed", "by", "at (UTC)"],
        [
            [
                r.run_id,
                r.name,
                r.target,
                (r.dataset_digest or "")[:12],
                r.rows,
                r.failed_rows,
                r.created_by,
                format_ms(r.created_at),
            ]
            for r in found
        ],
    )


@app.command("agreement")
def agreement(
    ctx: typer.Context,
    judge: Annotated[str, typer.Argument(help="A registered judge (name or name/N).")],
    dataset: Annotated[str, typer.Argument(help="An evaluation dataset with human labels.")],
    label: Annotated[
        str | None,
        typer.Option("--label", help="The expectation holding the human label (default: judge)."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Measure a judge against the human labels of a dataset; stored with its version."""
    with handle_errors(), state(ctx).client() as client:
        found = client.evaluation.agreement(judge, dataset, label=label)
    if json_output:
        emit_json(asdict(found))
        return
    title = f"Agreement of {found.judge} with {found.label!r}"
    print_table(
        f"{title} ({found.n} rows, {found.skipped} skipped)",
        ["measure", "value"],
        [[k, "undefined" if v is None else format_number(v)] for k, v in found.metrics.items()],
    )


@scorers_app.command("list")
def list_scorers(
    ctx: typer.Context,
    json_output: bool = JSON_OPTION,
) -> None:
    """The newest version of every registered scorer."""
    with handle_errors(), state(ctx).client() as client:
        found = client.evaluation.list_scorers()
    if json_output:
        emit_json([_scorer_dict(s) for s in found])
        return
    print_table(
        "Scorers",
        ["name", "version", "kind", "reference", "digest", "approved by", "by"],
        [
            [
                s.name,
                s.version,
                s.kind,
                s.reference,
                s.digest[:12],
                s.approved_by or "",
                s.created_by,
            ]
            for s in found
        ],
    )


_SCORER = Annotated[str, typer.Argument(help="The scorer (a judge).")]
_VERSION = Annotated[int, typer.Argument(help="Its version.", min=1)]


@scorers_app.command("request-approval")
def request_approval(
    ctx: typer.Context, name: _SCORER, version: _VERSION, json_output: bool = JSON_OPTION
) -> None:
    """Ask for a judge version to be approved (another approver approves it)."""
    _decide(ctx, "request", name, version, json_output)


@scorers_app.command("approve")
def approve(
    ctx: typer.Context, name: _SCORER, version: _VERSION, json_output: bool = JSON_OPTION
) -> None:
    """Approve a requested judge version (an approver who neither registered nor asked)."""
    _decide(ctx, "approve", name, version, json_output)


def _decide(ctx: typer.Context, step: str, name: str, version: int, json_output: bool) -> None:
    with handle_errors(), state(ctx).client() as client:
        if step == "request":
            found = client.evaluation.request_approval(name, version)
            said = f"approval of {found.ref} requested by {found.approval_requested_by}"
        else:
            found = client.evaluation.approve_scorer(name, version)
            said = f"{found.ref} approved by {found.approved_by}"
    if json_output:
        emit_json(_scorer_dict(found))
    else:
        console().print(said)
