"""``loopwright gates``: check a model version against an evaluation gate, and list results.

``check`` evaluates here (it reads the model and the holdout through the client, so ``--server``
works) and records the result; it exits 1 when the gate fails, so a CI step can stop on it. A
gate of ``kind: evaluation`` is checked on a prompt (``--prompt prompts:/NAME/N``) or model
version with a recorded evaluation run (``--evaluation-run RUN_ID``), where results are stored.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import (
    JSON_OPTION,
    cell_text,
    console,
    emit_json,
    format_ms,
    format_number,
    handle_errors,
    print_table,
)

if TYPE_CHECKING:
    from ..loop.entities import GateResult, GateSpec

__all__ = ["app"]

app = typer.Typer(
    help="Evaluation gates: rules a model version must meet on a holdout, or a prompt or model "
    "version on its evaluation run, before it goes on.",
    no_args_is_help=True,
)


def _result_dict(r: GateResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "gate": r.gate,
        "model": r.model,
        "version": r.version,
        "passed": r.passed,
        "reason": r.reason,
        "dataset": r.dataset,
        "dataset_version_id": r.dataset_version_id,
        "champion_version": r.champion_version,
        "outcomes": [asdict(o) for o in r.outcomes],
        "spec": dict(r.spec),
        "pipeline_run_id": r.pipeline_run_id,
        "created_by": r.created_by,
        "created_at": r.created_at,
        "subject": r.subject_uri,
        "evaluation_run_id": r.evaluation_run_id,
        "dataset_digest": r.dataset_digest,
        "scorers": dict(r.scorers),
    }


def _thresholds(spec: GateSpec) -> dict[str, str]:
    return {rule.text: f"{rule.op} {rule.threshold:g}" for rule in spec.rules}


@app.command("check")
def check(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="The gate spec (YAML).")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="The version to check: models:/NAME/N or models:/NAME@ALIAS."),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt", help="An evaluation gate's prompt version: prompts:/NAME/N or @ALIAS."
        ),
    ] = None,
    evaluation_run: Annotated[
        str | None,
        typer.Option("--evaluation-run", help="An evaluation gate's evidence: the run's id."),
    ] = None,
    trusted: Annotated[
        bool,
        typer.Option("--trusted", help="Allow packages that unpickle data or run packaged code."),
    ] = False,
    pipeline_run: Annotated[
        str | None,
        typer.Option("--pipeline-run", help="The pipeline run that produced the version."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Evaluate the gate on the version and record the result; exit 1 if it fails."""
    from ..errors import InvalidInput
    from ..loop.gates import evaluate_gate, load_gate_spec

    with handle_errors():
        spec = load_gate_spec(spec_file)
        subject = prompt or model
        if subject is None or (prompt is not None and model is not None):
            raise InvalidInput("name one version: --model models:/NAME/N or --prompt prompts:/...")
        with state(ctx).client() as client:
            if spec.kind == "evaluation":
                if evaluation_run is None:
                    raise InvalidInput(
                        f"gate {spec.name!r} is an evaluation gate: pass --evaluation-run RUN_ID "
                        "(the run client.evaluation.evaluate recorded)"
                    )
                result = client.gates.check_evaluation(
                    spec, subject, evaluation_run, pipeline_run_id=pipeline_run
                )
            else:
                if model is None or evaluation_run is not None:
                    raise InvalidInput(
                        f"gate {spec.name!r} is a holdout gate: it checks --model on its holdout "
                        "(--prompt and --evaluation-run are for gates of 'kind: evaluation')"
                    )
                result = evaluate_gate(
                    spec, model, client=client, pipeline_run_id=pipeline_run, trusted=trusted
                )
    if json_output:
        emit_json(_result_dict(result))
    else:
        thresholds = _thresholds(spec)
        print_table(
            f"Gate {result.gate} on {result.subject_uri} ({result.dataset})",
            ["rule", "value", "threshold", "result", "detail"],
            [
                [
                    o.rule,
                    "not measured" if o.value is None else format_number(o.value, 6),
                    thresholds.get(o.rule, ""),
                    cell_text("pass" if o.passed else "FAIL", "green" if o.passed else "bold red"),
                    o.detail,
                ]
                for o in result.outcomes
            ],
        )
        out = console()
        if result.passed:
            out.print(cell_text(f"gate {result.gate} passed (result {result.id})", "green"))
        else:
            out.print(cell_text(f"gate {result.gate} failed: {result.reason}", "bold red"))
    if not result.passed:
        raise typer.Exit(1)


@app.command("results")
def results(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    version: Annotated[
        int | None,
        typer.Option("--version", help="Only this version's (with --model or --prompt).", min=1),
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Only this prompt's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=1)] = 50,
    json_output: bool = JSON_OPTION,
) -> None:
    """Gate results, newest first."""
    with handle_errors(), state(ctx).client() as client:
        found = client.gates.results(model=model, version=version, limit=limit, prompt=prompt)
    if json_output:
        emit_json([_result_dict(r) for r in found])
        return
    print_table(
        "Gate results",
        ["id", "gate", "version of", "dataset", "result", "reason", "by", "at (UTC)"],
        [
            [
                r.id,
                r.gate,
                r.subject_uri,
                r.dataset,
                cell_text("passed" if r.passed else "failed", "green" if r.passed else "red"),
                r.reason,
                r.created_by,
                format_ms(r.created_at),
            ]
            for r in found
        ],
    )
