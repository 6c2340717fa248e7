"""What the continuous-training loop records: gates and their results, schedules and their
fires, loops and their iterations. Frozen dataclasses, the same on both backends.

Times are UTC milliseconds (``*_at``), durations milliseconds (``*_ms``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Fire",
    "GateResult",
    "GateRule",
    "GateSpec",
    "Iteration",
    "IterationState",
    "Loop",
    "RuleOutcome",
    "Schedule",
    "Trigger",
]

# --- gates -----------------------------------------------------------------------------------

# A rule's namespace: ``metrics`` (computed on the holdout: auc, accuracy, f1, precision,
# recall, log_loss, rmse, mae, r2...), ``latency`` (p50_ms, p95_ms, p99_ms of the packaged
# model's predict, one row at a time), ``fairness`` (the registry's fairness figures by the
# spec's sensitive columns: demographic_parity_ratio, equal_opportunity_ratio...),
# ``vs_champion`` (the metric minus the champion's on the same holdout; passes when there is no
# champion yet, and says so); ``evaluation`` (an evaluation gate's: an aggregate of the
# evaluation run, ``exact_match/mean``, ``failed_rows``, ``rows``, ``latency_ms/mean``...).
RuleNamespace = Literal["metrics", "latency", "fairness", "vs_champion", "evaluation"]
Operator = Literal[">=", ">", "<=", "<", "=="]


@dataclass(frozen=True)
class GateRule:
    """One declarative rule: ``metrics.auc >= 0.85`` is
    ``GateRule("metrics", "auc", ">=", 0.85)``; ``text`` is the rule as written."""

    namespace: RuleNamespace
    name: str
    op: Operator
    threshold: float
    text: str


@dataclass(frozen=True)
class GateSpec:
    """A named set of rules checked on a holdout dataset version.

    ``dataset`` names the holdout (``NAME@v3``, ``NAME@ALIAS``, ``NAME`` for the latest
    version: the version used is recorded in the result); ``target`` its label column;
    ``sensitive`` the columns fairness rules group by; ``champion`` how to find the model to
    beat (``models:/NAME@champion`` by default: the model's alias ``champion``); ``task``
    ``classification`` or ``regression`` (inferred from the target when None).
    """

    name: str
    dataset: str
    target: str
    rules: tuple[GateRule, ...]
    sensitive: tuple[str, ...] = ()
    champion: str | None = None
    task: Literal["classification", "regression"] | None = None
    latency_rows: int = 200
    # ``holdout``: the rules above, scored here on the holdout; ``evaluation``: ``evaluation.*``
    # rules over a recorded evaluation run on a version of the evaluation dataset ``dataset``
    # (``target`` is then empty), see :mod:`loopwright.loop.evaluation_gates`.
    kind: Literal["holdout", "evaluation"] = "holdout"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "evaluation":
            return {
                "name": self.name,
                "kind": "evaluation",
                "dataset": self.dataset,
                "rules": [r.text for r in self.rules],
            }
        return {
            "name": self.name,
            "dataset": self.dataset,
            "target": self.target,
            "rules": [r.text for r in self.rules],
            "sensitive": list(self.sensitive),
            "champion": self.champion,
            "task": self.task,
            "latency_rows": self.latency_rows,
        }


@dataclass(frozen=True)
class RuleOutcome:
    """One rule checked: the measured ``value`` (None when it could not be measured, which
    fails the rule unless ``detail`` says it does not apply, as with no champion yet)."""

    rule: str
    value: float | None
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class GateResult:
    """A gate checked on one model version and one holdout dataset version: each rule, its
    value and verdict. ``reason`` says why it failed (the failed rules with their values), or
    is empty when it passed.

    An evaluation gate's result (``evaluation_run_id`` set) may be about a prompt version:
    ``subject`` is then ``prompt`` and ``model``/``version`` name the prompt and its version;
    ``dataset_digest`` and ``scorers`` are the evaluation run's dataset content hash and scorer
    (judge) versions, kept with the result.
    """

    id: str
    gate: str
    model: str
    version: int
    dataset_version_id: str
    dataset: str
    champion_version: int | None
    passed: bool
    outcomes: tuple[RuleOutcome, ...]
    reason: str
    spec: Mapping[str, Any]
    pipeline_run_id: str | None
    created_by: str
    created_at: int
    subject: Literal["model", "prompt"] = "model"
    evaluation_run_id: str | None = None
    dataset_digest: str | None = None
    scorers: Mapping[str, str] = field(default_factory=dict)

    @property
    def subject_uri(self) -> str:
        """``models:/NAME/N`` or ``prompts:/NAME/N``: what the gate was checked on."""
        return f"{self.subject}s:/{self.model}/{self.version}"


# --- schedules and triggers ------------------------------------------------------------------

# ``cron`` (5 fields, UTC: ``0 3 * * 1``), ``interval`` (``30m``, ``6h``, ``1d``), ``drift``
# (a drift alert of the monitor opened), ``performance`` (a performance alert of the monitor
# opened), ``alert`` (any alert of the monitor opened), ``dataset`` (a new version of the
# dataset), ``manual`` (only when asked).
TriggerKind = Literal["cron", "interval", "drift", "performance", "alert", "dataset", "manual"]


@dataclass(frozen=True)
class Trigger:
    """What starts a job, parsed from its text by :func:`loopwright.loop.triggers.parse_trigger`:
    ``parse_trigger("drift:churn-monitor")``, ``"cron:0 3 * * 1"``, ``"interval:6h"``,
    ``"dataset:transactions"``, ``"manual"``; ``text`` is that form."""

    kind: TriggerKind
    spec: str
    text: str


@dataclass(frozen=True)
class Schedule:
    """A job the scheduler starts when its trigger fires.

    ``target_kind`` ``pipeline``: run ``target`` (``module:function``) with ``params`` in
    ``cwd``; ``loop``: start an iteration of the loop named ``target``. ``cursor`` is where an
    event trigger has read up to (the newest alert or dataset version seen), so an event fires
    once; ``next_fire_at`` is the next due time of a time trigger.
    """

    id: str
    name: str
    target_kind: Literal["pipeline", "loop"]
    target: str
    trigger: Trigger
    params: Mapping[str, Any]
    cwd: str | None
    enabled: bool
    next_fire_at: int | None
    last_fired_at: int | None
    cursor: str | None
    created_by: str
    created_at: int
    updated_at: int


FireStatus = Literal["started", "succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class Fire:
    """One firing of a schedule. ``event_key`` is unique per schedule (the due time of a time
    trigger, the alert or dataset version id of an event trigger): the database's unique
    constraint is what keeps two schedulers from starting the same job twice."""

    id: str
    schedule: str
    event_key: str
    due_at: int
    fired_at: int
    owner: str
    status: FireStatus
    pipeline_run_id: str | None
    iteration_id: str | None
    detail: str | None
    finished_at: int | None


# --- loops -----------------------------------------------------------------------------------

IterationState = Literal[
    "triggered",
    "training",
    "gating",
    "awaiting_approval",
    "canary",
    "comparing",
    "promoted",
    "rolled_back",
    "rejected",
    "failed",
]

TERMINAL_STATES: frozenset[str] = frozenset({"promoted", "rolled_back", "rejected", "failed"})
ACTIVE_STATES: frozenset[str] = frozenset(
    {"triggered", "training", "gating", "awaiting_approval", "canary", "comparing"}
)

# Every allowed move. ``gating -> canary`` only for a loop created without approval;
# ``canary -> rolled_back`` when the error rate breaches the limit before the window ends;
# ``* -> failed`` when a step cannot go on (the error says why).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "triggered": frozenset({"training", "failed"}),
    "training": frozenset({"gating", "failed"}),
    "gating": frozenset({"awaiting_approval", "canary", "rejected", "failed"}),
    "awaiting_approval": frozenset({"canary", "rejected", "failed"}),
    "canary": frozenset({"comparing", "rolled_back", "failed"}),
    "comparing": frozenset({"promoted", "rolled_back", "failed"}),
    "promoted": frozenset(),
    "rolled_back": frozenset(),
    "rejected": frozenset(),
    "failed": frozenset(),
}


@dataclass(frozen=True)
class Loop:
    """A continuous-training loop for one deployment.

    On a trigger it runs ``pipeline`` (``module:function``, returning the new model version:
    the candidate is the version it returns, so a version registered by a step attempt that
    died, before the resume re-ran it, stays in the registry unused),
    checks ``gates``, asks for approval (the registry's ``traffic`` approval of the model's
    policy) unless ``require_approval`` is false, sends ``canary_percent`` % of the
    deployment's traffic to the candidate for ``canary_window_ms``, then compares the variants
    (monitoring's comparison on ``metric``): promotes on a non-inferiority result (the lower
    bound of candidate - baseline above ``-margin``) with ``min_samples`` per variant, rolls back
    on a significant loss, an error rate above ``max_error_rate``, or no decision by
    ``max_compare_ms`` after the window.

    ``metric`` None means ``accuracy`` on labelled rows (never monitoring's label-free fallback,
    the mean prediction, which cannot tell a better model from a worse one): the comparison is
    not decidable until each variant has ``min_samples`` labelled rows, and without them by the
    deadline the iteration rolls back as inconclusive. A regression model names its metric
    (``mae``). When the promotion moves a protected alias (the primary follows ``@champion``),
    the iteration stays in ``comparing`` with the approval request in its comparison
    (``waiting_for``) and is promoted once the request is approved, rolled back if not.
    """

    id: str
    name: str
    deployment: str
    model: str
    pipeline: str
    params: Mapping[str, Any]
    gates: GateSpec | None
    triggers: tuple[Trigger, ...]
    canary_percent: float
    canary_window_ms: int
    metric: str | None
    margin: float
    min_samples: int
    max_error_rate: float
    max_compare_ms: int
    require_approval: bool
    status: Literal["active", "paused"]
    cwd: str | None
    description: str | None
    created_by: str
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class Iteration:
    """One turn of a loop, a persisted state machine (see ``TRANSITIONS``).

    Each field is filled by the state that produces it and kept after: the pipeline run of
    ``training``, the model version it produced, the gate result of ``gating``, the approval
    request of ``awaiting_approval``, the deployment revision that started the canary, the
    comparison (``VariantComparison.to_dict``-like JSON) of ``comparing``. ``reason`` says why it
    ended as it did; ``lease_owner``/``lease_until`` name the driver working on it now.
    """

    id: str
    loop: str
    number: int
    state: IterationState
    trigger: str
    trigger_detail: str | None
    pipeline_run_id: str | None
    model_version: int | None
    gate_result_id: str | None
    approval_request_id: str | None
    canary_revision: int | None
    canary_started_at: int | None
    comparison: Mapping[str, Any] | None
    reason: str | None
    lease_owner: str | None
    lease_until: int | None
    created_at: int
    updated_at: int
    finished_at: int | None
    history: tuple[tuple[str, int], ...] = field(default=())
