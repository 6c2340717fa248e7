"""``loopwright pipelines``: run a ``@pipeline`` by reference, list and show its runs, resume a
failed or killed one.

``run`` and ``resume`` print a line per step as it finishes (on stderr: stdout holds the result,
the run as JSON with ``--json``), and exit 1 when the run failed, naming the failed step and its
error. Every command works through ``client.pipelines``, so ``--server`` works; the pipeline's
code runs here, in this process (and its executor's workers).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import (
    JSON_OPTION,
    cell_text,
    console,
    emit_json,
    fail,
    format_duration,
    format_ms,
    handle_errors,
    print_table,
)

if TYPE_CHECKING:
    from ..client import Client
    from ..pipelines.entities import ArtifactRef, PipelineRun, StepRun

__all__ = ["app"]

app = typer.Typer(
    help="Pipelines: run a @pipeline (MODULE:PIPELINE), list and show its runs, resume one.",
    no_args_is_help=True,
)

EXECUTORS = ("inprocess", "process", "ray")
_POLL_S = 0.25  # how often run/resume look for steps that finished

_RUN = Annotated[str, typer.Argument(help="Pipeline run id (`loopwright pipelines list`).")]
_EXECUTOR = Annotated[
    str | None,
    typer.Option("--executor", help="Where steps run: inprocess, process or ray."),
]
_MAX_PARALLEL = Annotated[
    int | None,
    typer.Option("--max-parallel", min=1, help="Steps of a map or sweep run at once (at most)."),
]
_CWD = Annotated[
    str | None,
    typer.Option("--cwd", help="Folder the pipeline's module is imported from (default: here)."),
]


def _params(values: Sequence[str] | None) -> dict[str, str]:
    """``--param k=v`` options as strings; the pipeline's annotations convert them."""
    found: dict[str, str] = {}
    for value in values or ():
        key, sep, text = value.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"--param {value!r} is not NAME=VALUE (e.g. --param n_estimators=200)")
        if key in found:
            fail(f"--param {key} is given twice; give each parameter once")
        found[key] = text
    return found


def _executor(name: str | None) -> str | None:
    if name is not None and name not in EXECUTORS:
        fail(f"--executor {name!r} is not one of: {', '.join(EXECUTORS)}")
    return name


def _size(size: int) -> str:
    number = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if number < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{size} B"  # pragma: no cover - the loop returns


def _outputs(refs: Sequence[ArtifactRef]) -> str:
    return ", ".join(f"{r.name} ({r.materializer}, {_size(r.size)})" for r in refs)


def _status(step: StepRun) -> str:
    if step.status in ("cached", "resumed") and step.cached_from:
        return f"{step.status} from step run {step.cached_from}"
    return step.status


def _step_line(step: StepRun) -> Any:
    from rich.text import Text

    marks = {"completed": ("ok", "green"), "failed": ("FAILED", "bold red")}
    mark, style = marks.get(step.status, (step.status, "cyan"))
    line = Text(f"  {mark:<8}", style=style)
    line.append(f" {step.invocation}")
    served = step.status in ("cached", "resumed")
    line.append(f"  {format_duration(step.duration_ms)}", style="dim")
    if step.attempts > 1:
        line.append(f"  {step.attempts} attempts", style="yellow")
    if not served and step.cache_reason:
        line.append(f"  ({step.cache_reason})", style="dim")
    return line


class _Progress:
    """Prints each step run once it has finished: polled from the records while the pipeline
    runs (both backends, any executor), then the rest from the final run."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._shown: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def started(self, run: PipelineRun) -> None:
        console(stderr=True).print(
            cell_text(f"pipeline run {run.id} of {run.pipeline} (tracked run {run.run_id})")
        )
        self._thread = threading.Thread(
            target=self._poll, args=(run.id,), name="lw-pipeline-progress", daemon=True
        )
        self._thread.start()

    def _poll(self, pipeline_run_id: str) -> None:
        from ..errors import LoopwrightError

        while not self._stop.wait(_POLL_S):
            try:
                self.show(self._client.pipelines.get_run(pipeline_run_id).steps)
            except LoopwrightError:
                continue  # a busy store or server: the final run shows what was missed

    def show(self, steps: Sequence[StepRun]) -> None:
        with self._lock:
            for step in steps:
                if step.finished_at is not None and step.id not in self._shown:
                    self._shown.add(step.id)
                    console(stderr=True).print(_step_line(step))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """With ``--json``, what the pipeline's code prints goes to stderr: stdout is the JSON."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _showing_progress(
    client: Client, json_output: bool, start: Callable[[Callable[[PipelineRun], None]], PipelineRun]
) -> PipelineRun:
    """Run ``start(on_start)`` showing its steps' progress on stderr (with ``--json`` its
    prints go to stderr too, so stdout stays JSON), then the steps it ran."""
    progress = _Progress(client)
    try:
        with _stdout_to_stderr(json_output):
            done = start(progress.started)
    finally:
        progress.stop()
    progress.show(done.steps)
    return done


def _report(run: PipelineRun, json_output: bool) -> None:
    """The run's outcome; exit 1 when it failed."""
    from ..pipelines._json import run_json

    if json_output:
        emit_json(run_json(run))
    else:
        served = sum(s.status in ("cached", "resumed") for s in run.steps)
        console().print(
            cell_text(
                f"pipeline run {run.id}: {run.status} in {format_duration(run.duration_ms)}, "
                f"{len(run.steps)} step run(s), {served} served from earlier runs"
            )
        )
    if run.status != "completed":
        failed = [s for s in run.steps if s.status == "failed"]
        where = f"step {failed[0].invocation} failed: " if failed else ""
        error = (failed[0].error if failed else None) or run.error or "no error recorded"
        fail(f"pipeline run {run.id} {run.status}: {where}{_last_line(error)}")


def _last_line(error: str) -> str:
    """A traceback's last line (the exception) is what fits one line of the CLI."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else error


@app.command("run")
def run(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="MODULE:PIPELINE", help="The @pipeline, e.g. train:flow.")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="NAME=VALUE for a pipeline parameter; repeat for more."),
    ] = None,
    executor: _EXECUTOR = "inprocess",
    max_parallel: _MAX_PARALLEL = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster (--executor ray).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The run's name.")] = None,
    cwd: _CWD = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Run a @pipeline here, recording it (steps cached across runs); exit 1 if it failed."""
    from ..pipelines.pipeline import load_pipeline

    params = _params(param)
    chosen = _executor(executor) or "inprocess"
    with handle_errors(), state(ctx).client() as client:
        pipeline = load_pipeline(ref, cwd=cwd)
        done = _showing_progress(
            client,
            json_output,
            lambda on_start: pipeline.run(
                client=client,
                executor=chosen,
                max_parallel=max_parallel,
                name=name,
                params=params,
                ray_address=ray_address,
                on_start=on_start,
            ),
        )
    _report(done, json_output)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: _RUN,
    executor: _EXECUTOR = None,
    max_parallel: _MAX_PARALLEL = None,
    cwd: _CWD = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Run a failed or killed pipeline run again: the steps it completed are served from it,
    the rest run (default executor: the run's own)."""
    from ..pipelines.pipeline import resume as resume_run

    chosen = _executor(executor)
    with handle_errors(), state(ctx).client() as client:
        done = _showing_progress(
            client,
            json_output,
            lambda on_start: resume_run(
                run_id,
                client=client,
                executor=chosen,
                max_parallel=max_parallel,
                cwd=cwd,
                on_start=on_start,
            ),
        )
    _report(done, json_output)


@app.command("list")
def list_runs(
    ctx: typer.Context,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only runs of MODULE:PIPELINE.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only runs that are running, completed, failed or killed."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    json_output: bool = JSON_OPTION,
) -> None:
    """Pipeline runs, newest first."""
    from ..pipelines._json import run_json

    statuses = ("running", "completed", "failed", "killed")
    if status is not None and status not in statuses:
        fail(f"--status {status!r} is not one of: {', '.join(statuses)}")
    with handle_errors(), state(ctx).client() as client:
        runs = client.pipelines.list_runs(
            pipeline=pipeline,
            status=status,  # type: ignore[arg-type]  # checked above
            limit=limit,
        )
    if json_output:
        emit_json([run_json(r) for r in runs])
        return
    rows = [
        [
            r.id,
            r.pipeline,
            r.name,
            r.status,
            r.executor,
            format_ms(r.started_at),
            format_duration(r.duration_ms),
            r.resumed_from or "",
        ]
        for r in runs
    ]
    columns = ["id", "pipeline", "name", "status", "executor", "started (UTC)", "took", "resumed"]
    print_table(f"{len(runs)} pipeline run(s)", columns, rows)


@app.command("show")
def show(ctx: typer.Context, run_id: _RUN, json_output: bool = JSON_OPTION) -> None:
    """A run's steps in call order: status (cached or resumed: from which step run), the cache
    reason, attempts, duration and outputs; then its result or error."""
    from ..pipelines._json import run_json

    with handle_errors(), state(ctx).client() as client:
        found = client.pipelines.get_run(run_id)
    if json_output:
        emit_json(run_json(found))
        return
    out = console()
    params = ", ".join(f"{k}={v!r}" for k, v in found.params.items()) or "none"
    for line in (
        f"pipeline run {found.id}: {found.pipeline} ({found.name}), {found.status}",
        f"  started {format_ms(found.started_at)} UTC by {found.created_by} on "
        f"{found.host or '?'} (pid {found.pid}), took {format_duration(found.duration_ms)}, "
        f"executor {found.executor}",
        f"  params: {params}",
        f"  tracked run: {found.run_id}"
        + (f"; resumed from {found.resumed_from}" if found.resumed_from else ""),
    ):
        out.print(cell_text(line))
    rows = [
        [
            s.invocation,
            _status(s),
            s.cache_reason,
            s.attempts,
            format_duration(s.duration_ms),
            _outputs(s.outputs),
        ]
        for s in found.steps
    ]
    columns = ["step", "status", "cache reason", "attempts", "took", "outputs"]
    print_table(f"{len(found.steps)} step run(s)", columns, rows)
    if found.result is not None:
        out.print(cell_text(f"result: {_outputs([found.result])}"))
    for step in found.steps:
        if step.error:
            out.print(cell_text(f"{step.invocation} failed: {step.error}", style="red"))
    if found.error:
        out.print(cell_text(f"error: {found.error}", style="red"))
