"""What a trace monitor's window is compared with: the approved baseline.

``approved``: the version the monitored prompt alias points at when the pass runs (a version
reaches a protected alias only through the prompt's approval policy), and its newest
evaluation run (``client.evaluation.evaluate(PromptTarget(prompt version ...), ...)``, whose
target is the version's URI). ``evaluation:RUN_ID``: that evaluation run. From an evaluation
run, the rows are its traces when traces are linked to the run (``link.run_id``: MLflow's
``genai.evaluate`` links them), else its per-row results table: each row's output length and
scores. An evaluation row holds the prompt's variables, not the messages sent, no token counts
or cost, and a latency measured on another path (straight to the endpoint, no gateway, no
production load), so those figures are not compared; the run's note says so.
``window:SINCE/UNTIL``: the same selection's traces then (any version of a prompt selected by
alias: the alias may have pointed elsewhere then).

"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import InvalidInput, NotFound
from ..store import schema as t
from .llm_actions import REEVALUATION_PREFIX
from .llm_entities import TraceSelection
from .llm_spec import prompt_parts, scorer_column, window_bounds
from .llm_window import as_text, read_traces, scores_of, window_rows

if TYPE_CHECKING:
    from ..prompts.service import PromptService
    from ..store.home import Store
    from ..tracing.service import TracingService

__all__ = ["Baseline", "baseline_rows", "resolve_prompt_version"]

RESULTS_FILE = "eval_results.jsonl"
_EVAL_ONLY = ("output_chars",)


@dataclass(frozen=True)
class Baseline:
    """The baseline's rows (figures by column) and what they are, in words."""

    rows: list[dict[str, Any]]
    description: str
    note: str | None = None


def resolve_prompt_version(prompts: PromptService, selection: TraceSelection) -> str | None:
    """The selection's prompt as ``name/N`` now (an alias followed), None when it names the
    whole prompt or no prompt."""
    if selection.prompt is None:
        return None
    name, version, alias = prompt_parts(selection.prompt)
    if version is not None:
        return f"{name}/{version}"
    if alias is None:
        return None
    return f"{name}/{prompts.resolve(name, alias).version}"


def baseline_rows(
    store: Store,
    tracing: TracingService,
    baseline: str,
    selection: TraceSelection,
    prompt_version: str | None,
    scorers: Mapping[str, str],
    *,
    limit: int,
    score: Callable[[Sequence[str]], object] | None = None,
) -> Baseline:
    """The baseline's rows; ``scorers`` maps each scorer version's key to its name. ``score``
    is called with a baseline window's trace ids before their scores are read (the monitor's
    scorers assess them as they assess the current window's)."""
    if baseline.startswith("window:"):
        start, end = window_bounds(baseline.removeprefix("window:"))
        fixed = prompt_version if selection.prompt and "/" in selection.prompt else None
        ids, more = read_traces(store, selection, fixed, start, end, limit=limit)
        if score is not None:
            score(ids)
        rows = _trace_rows(store, ids, scorers)
        note = (
            f"the baseline window holds more than {limit} traces: the first {limit}"
            if more
            else None
        )
        return Baseline(rows, f"traces of {selection.describe()} in {baseline}", note)
    if baseline == "approved":
        if prompt_version is None:
            raise InvalidInput(f"baseline 'approved' needs a prompt alias; {selection.describe()}")
        run_id = _evaluation_of(store, prompt_version)
        what = f"evaluation run {run_id} of the approved prompts:/{prompt_version}"
    else:
        run_id = baseline.removeprefix("evaluation:")
        what = f"evaluation run {run_id}"
    return _evaluation_rows(store, tracing, run_id, scorers, what, limit)


def _evaluation_of(store: Store, prompt_version: str) -> str:
    """The newest evaluation run of ``prompts:/name/N``."""
    r = t.evaluation_runs.c
    uri = f"prompts:/{prompt_version}"
    with store.db.read() as conn:
        run_id = conn.execute(
            sa.select(r.run_id)
            .where(r.target == uri, ~r.name.startswith(REEVALUATION_PREFIX, autoescape=True))
            .order_by(r.created_at.desc(), r.run_id.desc())
            .limit(1)
        ).scalar()
    if run_id is None:
        raise NotFound(
            f"the approved version {uri} has no evaluation run to compare with; evaluate it "
            "(client.evaluation.evaluate(PromptTarget(client.prompts.load(...), ...), dataset, "
            "scorers)) or give the monitor a baseline 'window:SINCE/UNTIL'"
        )
    return str(run_id)


def _evaluation_rows(
    store: Store,
    tracing: TracingService,
    run_id: str,
    scorers: Mapping[str, str],
    what: str,
    limit: int,
) -> Baseline:
    r = t.evaluation_runs.c
    with store.db.read() as conn:
        if conn.execute(sa.select(r.run_id).where(r.run_id == run_id)).first() is None:
            raise NotFound(
                f"run {run_id!r} is not an evaluation run (client.evaluation.evaluations() "
                "lists them)"
            )
    page = tracing.search(None, f"link.run_id = '{run_id}'", max_results=min(limit, 1000))
    if page.traces:
        ids = [trace.trace_id for trace in page.traces]
        return Baseline(_trace_rows(store, ids, scorers), f"traces of {what}")
    names = set(scorers.values())
    rows = []
    for item in _results(store, run_id)[:limit]:
        row: dict[str, Any] = {
            "output_chars": None if item.get("error") else _length(item.get("outputs")),
        }
        for name, score in (item.get("scores") or {}).items():
            if name in names and score.get("error") is None:
                row[scorer_column(name)] = score.get("value")
        rows.append(row)
    note = (
        f"the baseline is {what}'s results table: input length, tokens, cost and latency are "
        f"not compared (only {', '.join(_EVAL_ONLY)} and the scores)"
    )
    return Baseline(rows, f"results of {what}", note)


def _results(store: Store, run_id: str) -> list[dict[str, Any]]:
    a = t.artifacts.c
    with store.db.read() as conn:
        blob = conn.execute(
            sa.select(a.blob_hash).where(
                a.owner_type == "run", a.owner_id == run_id, a.path == RESULTS_FILE
            )
        ).scalar()
    if blob is None:
        raise NotFound(f"evaluation run {run_id} has no {RESULTS_FILE} to compare with")
    text = store.blobs.read_bytes(blob).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _length(value: Any) -> int | None:
    text = as_text(value)
    return None if text is None else len(text)


def _trace_rows(
    store: Store, ids: Sequence[str], scorers: Mapping[str, str]
) -> list[dict[str, Any]]:
    with store.db.read() as conn:
        scores = scores_of(conn, ids, scorers)
        figures = window_rows(conn, ids)
    rows = []
    for trace_id in ids:
        if trace_id not in figures:
            continue
        row = figures[trace_id]
        for name, value in scores.get(trace_id, {}).items():
            row[scorer_column(name)] = value
        rows.append(row)
    return rows
