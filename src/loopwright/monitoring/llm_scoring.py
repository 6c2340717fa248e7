"""Online scoring: a trace monitor's scorers over a sample of its window's traces.

Each assessment is written through the tracing service (``client.tracing.assessments`` shows
it; source ``LLM_JUDGE`` for a judge, ``CODE`` otherwise) with the scorer version's key as its
``source_id`` (``correctness/2``, ``builtin:max_length@1a2b3c4d5e6f``). That key makes the
pass idempotent: a trace that has an assessment of a scorer version is not scored by it again,
whatever monitor or pass wrote it, and a scorer that failed on a trace leaves an assessment
with the error (so the failure is seen on the trace and not retried every pass; a new scorer
version scores it again). The sample is chosen by a hash of the monitor's id and the trace id:
every pass picks the same traces, and a sample rate of 0.1 scores about one trace in ten.

A pass scores at most ``max_scored_per_pass`` traces of each window it reads (the current one,
and a ``window:`` baseline's), oldest first, so its work is bounded whatever the traffic;
``ScoringProgress.remaining`` says how many of the current window wait for the next pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, InvalidInput, NotFound
from .llm_entities import ScoringProgress, TraceError, TraceMonitor
from .llm_spec import check_scorer_spec
from .llm_window import load_traces, root_io, scored_pairs

if TYPE_CHECKING:
    from ..evaluation.scorers import Scorer
    from ..evaluation.service import EvaluationService
    from ..store.home import Store
    from ..tracing.service import TracingService

__all__ = ["LoadedScorer", "in_sample", "load_scorers", "score_window"]

_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class LoadedScorer:
    """A monitor's scorer ready to run: its name (the assessment's and the drift column's),
    the version key stored as ``source_id``, and the scorer."""

    name: str
    key: str
    scorer: Scorer

    @property
    def source_type(self) -> str:
        return "LLM_JUDGE" if self.scorer.kind == "judge" else "CODE"


def pin_scorers(
    evaluation: EvaluationService, specs: Sequence[str], *, approved_judges: bool = False
) -> list[str]:
    """The monitor's scorers as stored: a registered scorer pinned to a version (its newest,
    when none is given), a built-in as written. Unknown names fail here, at creation.
    ``approved_judges``: every judge must be an approved version (a monitor whose alerts act
    on production asks it, as a gate does)."""
    if isinstance(specs, str) or not isinstance(specs, Sequence) or not specs:
        raise InvalidInput(
            "scorers must be a non-empty list, e.g. ['correctness/2', 'builtin:json_valid']"
        )
    from .llm_spec import MAX_SCORERS

    if len(specs) > MAX_SCORERS:
        raise InvalidInput(f"at most {MAX_SCORERS} scorers, got {len(specs)}")
    pinned: list[str] = []
    for spec in specs:
        checked = check_scorer_spec(spec)
        if isinstance(checked, str):
            name, _, number = checked.partition("/")
            try:
                version = evaluation.get_scorer(name, int(number) if number else None)
            except NotFound as exc:
                raise NotFound(
                    f"scorer {spec!r} is not registered ({exc}); register it with "
                    "client.evaluation.register_scorer, or use a built-in 'builtin:NAME'"
                ) from None
            if version.kind == "mlflow":
                raise InvalidInput(
                    f"scorer {version.ref} was registered through MLflow; it runs in "
                    "mlflow.genai.evaluate only, not in a Loopwright monitor"
                )
            if approved_judges and version.kind == "judge" and not version.approved:
                raise Conflict(
                    f"judge {version.ref} is not approved, and this monitor's alerts act (roll "
                    "back, re-evaluate): its judges must be approved versions, as a gate's are "
                    f"(`loopwright eval scorers request-approval {version.name} "
                    f"{version.version}`), or create the monitor without actions"
                )
            pinned.append(version.ref)
        else:
            pinned.append(spec)
    if len({_name_of(p) for p in pinned}) != len(pinned):
        raise InvalidInput(f"scorers {pinned} name one scorer twice; each needs its own name")
    return pinned


def _name_of(spec: str) -> str:
    if spec.startswith("builtin:"):
        return spec.removeprefix("builtin:").partition(":")[0]
    return spec.partition("/")[0]


def load_scorers(evaluation: EvaluationService, specs: Sequence[str]) -> list[LoadedScorer]:
    """The pinned scorers, loaded (a registered code scorer whose code changed fails)."""
    from ..evaluation import builtins

    loaded = []
    for spec in specs:
        checked = check_scorer_spec(spec)
        if isinstance(checked, str):
            scorer = evaluation.load_scorer(checked)
            loaded.append(LoadedScorer(checked.partition("/")[0], checked, scorer))
        else:
            name, arguments = checked
            scorer = builtins.build(name, arguments)
            loaded.append(LoadedScorer(name, f"builtin:{name}@{scorer.digest[:12]}", scorer))
    return loaded


def in_sample(monitor_id: str, trace_id: str, rate: float) -> bool:
    """Whether the trace is in the monitor's sample (a hash: the same answer every pass)."""
    if rate >= 1:
        return True
    digest = hashlib.blake2b(f"{monitor_id}:{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def score_window(
    store: Store,
    tracing: TracingService,
    monitor: TraceMonitor,
    scorers: Sequence[LoadedScorer],
    trace_ids: Sequence[str],
) -> ScoringProgress:
    """Score the sampled, not yet scored traces among ``trace_ids`` (oldest first, at most
    the monitor's ``max_scored_per_pass``) and record each assessment on its trace."""
    sampled = [i for i in trace_ids if in_sample(monitor.monitor.id, i, monitor.sample_rate)]
    keys = [s.key for s in scorers]
    with store.db.read() as conn:
        done = scored_pairs(conn, sampled, keys)
    todo = [i for i in sampled if any((i, k) not in done for k in keys)]
    chosen = todo[: monitor.max_scored_per_pass]
    errors: list[TraceError] = []
    written = 0
    for trace in load_traces(tracing, chosen):
        expectations = _expectations(tracing, trace.trace_id)
        inputs, outputs = root_io(trace)
        for each in scorers:
            if (trace.trace_id, each.key) in done:
                continue
            feedback = each.scorer.score(
                inputs=_as_inputs(inputs),
                outputs=outputs,
                expectations=expectations,
                trace=trace,
            )
            error = None
            if feedback.error is not None:
                message = feedback.error[:_ERROR_CHARS]
                errors.append(TraceError(trace.trace_id, each.name, message))
                error = {"error_code": "SCORER_FAILED", "error_message": message}
            try:
                tracing.log_assessment(
                    trace.trace_id,
                    each.name,
                    feedback.value,
                    source_type=each.source_type,
                    source_id=each.key,
                    rationale=feedback.rationale or None,
                    error=error,
                    metadata={"loopwright.monitor": monitor.name, "loopwright.scorer": each.key},
                )
                written += 1
            except NotFound:
                break  # the trace was deleted meanwhile: nothing to score
    return ScoringProgress(
        traces=len(trace_ids),
        sampled=len(sampled),
        already_scored=len(sampled) - len(todo),
        scored=len(chosen),
        remaining=len(todo) - len(chosen),
        assessments=written,
        errors=tuple(errors),
    )


def _as_inputs(inputs: Any) -> Mapping[str, Any]:
    """A trace's inputs as a scorer's keyword mapping: a mapping as is, chat messages under
    ``messages`` (MLflow's shape), anything else under ``input``."""
    if isinstance(inputs, Mapping):
        return inputs
    if isinstance(inputs, list):
        return {"messages": inputs}
    return {"input": inputs}


def _expectations(tracing: TracingService, trace_id: str) -> dict[str, Any]:
    """The trace's valid expectations (a human's expected answer), by name, for scorers that
    compare with one."""
    found: dict[str, Any] = {}
    for assessment in tracing.assessments(trace_id):
        if assessment.kind == "expectation" and assessment.valid:
            found[assessment.name] = assessment.value
    return found


def scorer_sources(scorers: Sequence[LoadedScorer]) -> dict[str, str]:
    """``{source_id: scorer name}``: how stored assessments map back to drift columns."""
    return {s.key: s.name for s in scorers}
