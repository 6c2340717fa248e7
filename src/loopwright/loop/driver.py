"""The loop's driver: moves iterations through their states, one action at a time.

Each state has one action (train, gate, ask for approval, watch the canary, compare). An action
first looks at what an earlier, killed driver may have done already (the pipeline run recorded,
the gate result stored, the approval request opened, the canary in the deployment, the verdict
recorded), does only what is missing, records it, and then moves the state by compare-and-set.
Failpoints (:mod:`._faults`) sit between each side effect and the write recording it, so the kill
tests can check that a fresh driver finishes every state without doing anything twice.

A driver holds the iteration's lease while it works (renewed during training), so two drivers
(two schedulers, a ``loops tick`` beside a scheduler) never act on one iteration at once.

Example:
    >>> import loopwright as lw  # doctest: +SKIP
    >>> from loopwright.loop.driver import advance_all  # doctest: +SKIP
    >>> advance_all(lw.connect(), owner="cron-host")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._ids import now_ms as _wall_clock
from .._numbers import is_number
from ..errors import Conflict, InvalidInput, LoopwrightError, PermissionDenied
from ._faults import hit
from .entities import ACTIVE_STATES

if TYPE_CHECKING:
    from ..client import Client
    from ..monitoring.entities import VariantComparison
    from ..pipelines.entities import PipelineRun
    from ..serving.entities import Deployment
    from .entities import Iteration, Loop

__all__ = [
    "DEFAULT_METRIC",
    "LEASE",
    "MIN_ERROR_ROWS",
    "advance",
    "advance_all",
    "version_of",
    "waiting_text",
]

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# An error rate over fewer canary rows than this is noise, not a breach.
MIN_ERROR_ROWS = 20
# A loop without a metric compares on labelled accuracy, never on monitoring's label-free
# fallback (the mean prediction), which says nothing about whether the candidate is right.
DEFAULT_METRIC = "accuracy"

Action = Callable[["_Turn", "Loop", "Iteration"], "Iteration | None"]


def advance(
    client: Client,
    iteration_id: str,
    *,
    owner: str,
    now_ms: int | None = None,
    lease: timedelta = LEASE,
) -> Iteration:
    """Take the iteration's lease and run its actions until it must wait (approval pending,
    canary window open, not enough samples to compare) or ends; returns it as it is then.

    Another driver holding the lease: nothing is done. An unexpected error ends the iteration
    ``failed`` with the error (a later tick does not retry it; a new trigger starts a new one).
    ``now_ms`` fixes the time the canary window and the comparison deadline are read against.
    """
    loops = client.loops
    iteration = loops.lease(iteration_id, owner=owner, ttl=lease)
    if iteration is None:
        return loops.get_iteration(iteration_id)
    turn = _Turn(client, owner, lease, (lambda: now_ms) if now_ms is not None else _wall_clock)
    try:
        while iteration.state in ACTIVE_STATES:
            moved = _act(turn, iteration)
            if moved is None:
                break
            iteration = moved
            if iteration.state in ACTIVE_STATES:
                loops.lease(iteration_id, owner=owner, ttl=lease)
    finally:
        if iteration.state in ACTIVE_STATES:
            try:  # let another driver take over at once rather than after the lease lapses
                loops.lease(iteration_id, owner=owner, ttl=timedelta(0))
            except LoopwrightError:
                logger.warning("iteration %s: could not give up the lease", iteration_id)
    return loops.get_iteration(iteration_id)


def advance_all(
    client: Client, *, owner: str, now_ms: int | None = None, lease: timedelta = LEASE
) -> list[Iteration]:
    """:func:`advance` every in-flight iteration, oldest loop first; returns them after."""
    active = client.loops.iterations(active=True, limit=10_000)
    return [
        advance(client, it.id, owner=owner, now_ms=now_ms, lease=lease) for it in reversed(active)
    ]


@dataclasses.dataclass(frozen=True)
class _Turn:
    client: Client
    owner: str
    lease: timedelta
    now: Callable[[], int]


def _act(turn: _Turn, iteration: Iteration) -> Iteration | None:
    """One action; the iteration after it, or None when it waits (or another driver moved it)."""
    loop = turn.client.loops.get(iteration.loop)
    hit(f"loop.{iteration.state}.begin")  # a driver dying in any state, before it acts
    try:
        return _ACTIONS[iteration.state](turn, loop, iteration)
    except Conflict as exc:
        current = turn.client.loops.get_iteration(iteration.id)
        if current.state != iteration.state:
            logger.info("iteration %s moved by another driver: %s", iteration.id, exc)
            return None
        return _fail(turn, iteration, exc)
    except Exception as exc:  # the iteration's outcome (advance's docstring), not raised
        logger.warning("iteration %s failed in %s", iteration.id, iteration.state, exc_info=True)
        return _fail(turn, iteration, exc)


def _fail(turn: _Turn, iteration: Iteration, exc: BaseException) -> Iteration:
    reason = f"{iteration.state}: {type(exc).__name__}: {exc}"[:4000]
    return turn.client.loops.transition(
        iteration.id, expect=iteration.state, to="failed", reason=reason
    )


# --- training ------------------------------------------------------------------------------


def _triggered(turn: _Turn, loop: Loop, it: Iteration) -> Iteration:
    return turn.client.loops.transition(it.id, expect="triggered", to="training")


def _training(turn: _Turn, loop: Loop, it: Iteration) -> Iteration | None:
    from ..pipelines.pipeline import load_pipeline, load_result, resume

    loops = turn.client.loops

    def record(run: PipelineRun) -> None:
        loops.update(it.id, expect="training", pipeline_run_id=run.id)
        hit("loop.training.started")

    with _renewing(turn, it.id):
        if it.pipeline_run_id is None:
            pipeline = load_pipeline(loop.pipeline, cwd=loop.cwd)
            run = pipeline.run(client=turn.client, params=dict(loop.params), on_start=record)
        else:
            run = turn.client.pipelines.get_run(it.pipeline_run_id)
            if run.status == "running":  # its process is alive elsewhere: let it finish
                return None
            if run.status in ("failed", "killed"):
                run = resume(run.id, client=turn.client, cwd=loop.cwd, on_start=record)
    if run.status != "completed":
        return loops.transition(
            it.id, expect="training", to="failed", pipeline_run_id=run.id,
            reason=f"pipeline run {run.id} {run.status}: {run.error or 'no error recorded'}",
        )  # fmt: skip
    # The candidate is the version the completed run returns, not the newest one its steps
    # registered: a step killed after registering is re-run by the resume and registers again,
    # and the dead attempt's version stays in the registry, never gated, canaried or promoted;
    # a cached step returns the version it registered in an earlier iteration.
    version = version_of(load_result(run, client=turn.client), loop.model)
    hit("loop.training.finished")
    return loops.transition(
        it.id, expect="training", to="gating", pipeline_run_id=run.id, model_version=version
    )


def version_of(result: object, model: str) -> int:
    """The version of ``model`` a pipeline's return value names: ``models:/NAME/N``, a
    mapping (or a ModelVersion) with ``name`` and ``version``, or a bare version number."""
    name: object = model
    if isinstance(result, str) and result.startswith("models:/"):
        name, _, number = result[len("models:/") :].rpartition("/")
        version: object = int(number) if is_number(number) else None
    elif isinstance(result, Mapping):
        name, version = result.get("name", model), result.get("version")
    elif isinstance(result, int) and not isinstance(result, bool):
        version = result
    else:
        name, version = getattr(result, "model", model), getattr(result, "version", None)
    if isinstance(version, str) and is_number(version):
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(
            f"the loop's pipeline returned {str(result)[:200]!r}, which names no version of "
            f"model {model!r}; return the registered version (models:/{model}/N, the "
            "ModelVersion lw.log_model or register gives, or N)"
        )
    if name != model:
        raise InvalidInput(
            f"the loop's pipeline returned a version of model {name!r}, but the loop's "
            f"deployment serves model {model!r}; register the new version under {model!r}"
        )
    return version


@contextmanager
def _renewing(turn: _Turn, iteration_id: str) -> Iterator[None]:
    """Keep the lease while a long action (training) runs in this thread."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(max(turn.lease.total_seconds() / 3, 0.05)):
            try:
                turn.client.loops.lease(iteration_id, owner=turn.owner, ttl=turn.lease)
            except LoopwrightError:
                logger.warning("iteration %s: lease renewal failed", iteration_id, exc_info=True)

    thread = threading.Thread(target=renew, name=f"loop-lease-{iteration_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- gating and approval -------------------------------------------------------------------


def _gating(turn: _Turn, loop: Loop, it: Iteration) -> Iteration:
    loops, version = turn.client.loops, _version(it)
    gate_result_id = it.gate_result_id
    if loop.gates is not None:
        result = _gate_result(turn, loop, it, version)
        gate_result_id = result.id
        hit("loop.gating.recorded")
        if not result.passed:
            return loops.transition(
                it.id, expect="gating", to="rejected", gate_result_id=gate_result_id,
                reason=f"gate {result.gate!r} failed: {result.reason}",
            )  # fmt: skip
    if loop.require_approval:
        return loops.transition(
            it.id, expect="gating", to="awaiting_approval", gate_result_id=gate_result_id
        )
    revision = _apply_canary(turn, loop, version)
    hit("loop.canary.applied")
    return loops.transition(
        it.id, expect="gating", to="canary", gate_result_id=gate_result_id,
        canary_revision=revision, canary_started_at=turn.now(),
    )  # fmt: skip


def _gate_result(turn: _Turn, loop: Loop, it: Iteration, version: int) -> Any:
    """The gate's result for this pipeline run and version: the one recorded already (a
    driver killed after evaluating), else evaluated now."""
    assert loop.gates is not None
    for result in turn.client.gates.results(model=loop.model, version=version, limit=200):
        if result.gate == loop.gates.name and result.pipeline_run_id == it.pipeline_run_id:
            return result
    from .gates import evaluate_gate

    return evaluate_gate(
        loop.gates, _uri(loop, version), client=turn.client, pipeline_run_id=it.pipeline_run_id
    )


def _awaiting_approval(turn: _Turn, loop: Loop, it: Iteration) -> Iteration | None:
    loops, registry, version = turn.client.loops, turn.client.registry, _version(it)
    if it.approval_request_id is None:
        try:
            revision = _apply_canary(turn, loop, version)
        except PermissionDenied:
            # The registry held the canary back and opened the request (or found the open one).
            request = _pending_request(turn, loop, version, "traffic")
            if request is None:
                raise
            loops.update(it.id, expect="awaiting_approval", approval_request_id=request.id)
            hit("loop.approval.requested")
            return None
    else:
        request = registry.get_request(it.approval_request_id)
        if request.status == "pending":
            return None
        if request.status != "approved":
            comments = [d.comment for d in request.decisions if d.decision == "reject"]
            said = f": {comments[-1]}" if comments and comments[-1] else ""
            return loops.transition(
                it.id, expect="awaiting_approval", to="rejected",
                reason=f"approval request {request.id} {request.status}{said}",
            )  # fmt: skip
        revision = _apply_canary(turn, loop, version)
    hit("loop.canary.applied")
    return loops.transition(
        it.id, expect="awaiting_approval", to="canary", canary_revision=revision,
        canary_started_at=turn.now(),
    )  # fmt: skip


def _pending_request(turn: _Turn, loop: Loop, version: int, action: str) -> Any:
    """The pending ``action`` request (``traffic``, ``alias``) for the version: the registry
    opens one (or finds the open one) on each refusal, so a decided request of an earlier
    iteration is never taken."""
    pending = [
        r
        for r in turn.client.registry.requests(status="pending", model=loop.model)
        if r.action == action and r.version == version
    ]
    return pending[-1] if pending else None


# --- the canary ----------------------------------------------------------------------------


def _apply_canary(turn: _Turn, loop: Loop, version: int) -> int:
    """Send ``canary_percent`` of the traffic to the candidate (unless it gets it already: a
    driver killed after applying it); the deployment's revision holding the canary."""
    from ..serving.entities import Variant

    uri, deployments = _uri(loop, version), turn.client.deployments
    current = deployments.get(loop.deployment)
    if _has_canary(current, uri):
        return current.revision
    primary = current.variant("primary")
    if primary is None:
        raise Conflict(
            f"deployment {loop.deployment!r} has no primary variant to set a canary beside; "
            "set its traffic to one primary first"
        )
    share = loop.canary_percent / 100
    variants = [
        Variant("primary", primary.model_uri, 1 - share),
        Variant("canary", uri, share),
        *current.shadows,
    ]
    changed = deployments.set_traffic(
        loop.deployment, variants, strategy="canary", expect_revision=current.revision
    )
    return changed.revision


def _canary(turn: _Turn, loop: Loop, it: Iteration) -> Iteration | None:
    started = _started(it)
    rows, errors = _canary_errors(turn, loop, started)
    if rows >= MIN_ERROR_ROWS and errors / rows > loop.max_error_rate:
        reason = (
            f"canary error rate {errors / rows:.1%} ({errors} of {rows} rows answered 5xx) is "
            f"above the limit {loop.max_error_rate:.1%}"
        )
        _roll_back(turn, loop, it)
        hit("loop.canary.rolled_back")
        return turn.client.loops.transition(it.id, expect="canary", to="rolled_back", reason=reason)
    if turn.now() < started + loop.canary_window_ms:
        return None
    return turn.client.loops.transition(it.id, expect="canary", to="comparing")


def _canary_errors(turn: _Turn, loop: Loop, started: int) -> tuple[int, int]:
    """Rows the canary answered since it started, and how many of them with a 5xx status."""
    since = datetime.fromtimestamp(started / 1000, UTC)
    frame = turn.client.prediction_log.read(
        loop.deployment, since=since, columns=["variant", "status"]
    )
    if frame.empty:
        return 0, 0
    canary = frame[frame["variant"] == "canary"]
    return len(canary), int((canary["status"] >= 500).sum())


def _roll_back(turn: _Turn, loop: Loop, it: Iteration) -> None:
    """Take the candidate out of the deployment unless it is out already: restore the revision
    before the canary when the canary's is still the current one, else the primary alone."""
    from ..serving.entities import Variant

    deployments = turn.client.deployments
    current = deployments.get(loop.deployment)
    if not _has_canary(current, _uri(loop, _version(it))):
        return
    if current.revision == it.canary_revision and current.revision > 1:
        deployments.rollback(loop.deployment, to_revision=current.revision - 1)
        return
    primary = current.variant("primary")
    assert primary is not None  # a canary strategy has one
    deployments.set_traffic(
        loop.deployment,
        [Variant("primary", primary.model_uri, 1.0), *current.shadows],
        expect_revision=current.revision,
    )


# --- the comparison ------------------------------------------------------------------------


def _comparing(turn: _Turn, loop: Loop, it: Iteration) -> Iteration | None:
    loops = turn.client.loops
    recorded = dict(it.comparison or {})
    if recorded.get("verdict") is None:
        verdict = _verdict(turn, loop, it)
        if verdict.get("verdict") is None:
            loops.update(it.id, expect="comparing", comparison=verdict)
            return None
        # The verdict is stored before it is carried out, so a driver killed in between
        # carries out the same one rather than comparing again on more data.
        recorded = dict(
            loops.update(it.id, expect="comparing", comparison=verdict).comparison or {}
        )
    if recorded["verdict"] == "promote":
        return _promote(turn, loop, it, recorded)
    _roll_back(turn, loop, it)
    hit("loop.compare.rolled_back")
    return loops.transition(
        it.id, expect="comparing", to="rolled_back", reason=str(recorded.get("reason", ""))
    )


def _promote(turn: _Turn, loop: Loop, it: Iteration, recorded: dict[str, Any]) -> Iteration | None:
    """Carry out a ``promote`` verdict. When the primary follows a protected alias the
    registry refuses and opens an approval request: the comparison records it
    (``waiting_for``) and later ticks wait for its decision: approved (the registry moved the
    alias), promote again, which now goes through; rejected or expired, roll back."""
    loops, version = turn.client.loops, _version(it)
    waiting = recorded.get("waiting_for")
    if isinstance(waiting, str):
        request = turn.client.registry.get_request(waiting)
        if request.status == "pending":
            return None
        if request.status != "approved":
            _roll_back(turn, loop, it)
            hit("loop.compare.rolled_back")
            return loops.transition(
                it.id, expect="comparing", to="rolled_back",
                reason=f"promotion refused: {_waiting_text(recorded, version)}"
                f"{_decided(request)}",
            )  # fmt: skip
    current = turn.client.deployments.get(loop.deployment)
    if _has_canary(current, _uri(loop, version)):
        try:
            turn.client.deployments.promote(loop.deployment)
        except PermissionDenied as exc:  # a protected alias moves once approved
            request = _pending_request(turn, loop, version, "alias")
            if request is None:
                raise
            if request.id != waiting:
                waits = {"waiting_for": request.id, "waiting_alias": request.target}
                loops.update(
                    it.id, expect="comparing",
                    comparison={**recorded, **waits, "refusal": str(exc)},
                )  # fmt: skip
            logger.info("iteration %s: promotion waits for request %s", it.id, request.id)
            return None
    hit("loop.compare.promoted")
    return loops.transition(
        it.id, expect="comparing", to="promoted", reason=str(recorded.get("reason", ""))
    )


def waiting_text(it: Iteration) -> str | None:
    """``promotion waits for approval request ID (alias A -> version N)`` while the
    iteration's promotion waits for an approver, else None (``loops show``/``history``)."""
    comparison = it.comparison or {}
    if it.state != "comparing" or not isinstance(comparison.get("waiting_for"), str):
        return None
    return f"promotion waits for {_waiting_text(comparison, it.model_version)}"


def _waiting_text(comparison: Mapping[str, Any], version: int | None) -> str:
    alias = comparison.get("waiting_alias") or "?"
    return f"approval request {comparison['waiting_for']} (alias {alias} -> version {version})"


def _decided(request: Any) -> str:
    """`` rejected by bob: too risky``: the request's end, by whom and with what comment."""
    said = ""
    against = [d for d in request.decisions if d.decision == "reject"]
    if against:
        last = against[-1]
        said = f" by {last.actor}" + (f": {last.comment}" if last.comment else "")
    return f" {request.status}{said}"


def _verdict(turn: _Turn, loop: Loop, it: Iteration) -> dict[str, Any]:
    """The comparison as JSON with ``verdict`` ``promote``, ``rollback`` or None (wait) and
    the ``reason``."""
    started = _started(it)
    deadline = started + loop.canary_window_ms + loop.max_compare_ms
    out_of_time = turn.now() >= deadline
    try:
        comparison = turn.client.monitoring.compare_variants(
            loop.deployment,
            baseline="primary",
            candidate="canary",
            since=datetime.fromtimestamp(started / 1000, UTC),
            min_samples=max(loop.min_samples, 2),
            metric=loop.metric or DEFAULT_METRIC,
        )
    except InvalidInput as exc:  # no labels yet, no canary rows yet: not decidable yet
        if out_of_time:
            return {"verdict": "rollback", "reason": f"inconclusive: {exc}", "error": str(exc)}
        return {"verdict": None, "waiting": str(exc)}
    data: dict[str, Any] = dataclasses.asdict(comparison)
    figure = _figure(comparison)
    if comparison.enough_data and _non_inferior(comparison, loop.margin):
        return {**data, "verdict": "promote", "reason": f"non-inferior: {figure}"}
    if comparison.decision == "rollback":
        return {**data, "verdict": "rollback", "reason": f"significantly worse: {figure}"}
    if out_of_time:
        return {**data, "verdict": "rollback", "reason": f"inconclusive: {figure}"}
    return {**data, "verdict": None}


def _non_inferior(comparison: VariantComparison, margin: float) -> bool:
    if comparison.higher_is_better:
        return comparison.ci_low > -margin
    return comparison.ci_high < margin


def _figure(c: VariantComparison) -> str:
    return (
        f"{c.metric} canary - primary = {c.difference:+.4f} ({c.confidence:.0%} CI "
        f"{c.ci_low:+.4f}..{c.ci_high:+.4f}; n = {c.candidate.n} / {c.baseline.n}, "
        f"p = {c.p_value:.3g})"
    )


# --- small helpers -------------------------------------------------------------------------


def _has_canary(deployment: Deployment, uri: str) -> bool:
    canary = deployment.variant("canary")
    return deployment.strategy == "canary" and canary is not None and canary.model_uri == uri


def _uri(loop: Loop, version: int) -> str:
    return f"models:/{loop.model}/{version}"


def _version(it: Iteration) -> int:
    if it.model_version is None:
        raise Conflict(f"iteration {it.id} in {it.state!r} has no model version recorded")
    return it.model_version


def _started(it: Iteration) -> int:
    if it.canary_started_at is None:
        raise Conflict(f"iteration {it.id} in {it.state!r} has no canary start recorded")
    return it.canary_started_at


_ACTIONS: dict[str, Action] = {
    "triggered": _triggered,
    "training": _training,
    "gating": _gating,
    "awaiting_approval": _awaiting_approval,
    "canary": _canary,
    "comparing": _comparing,
}
