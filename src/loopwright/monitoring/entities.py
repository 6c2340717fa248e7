"""What monitoring returns: drift results, references, monitors and their runs, labels'
performance, variant comparisons and alerts. Frozen dataclasses, the same on both backends.

Times are UTC milliseconds (``*_at``, ``window_*``), as everywhere in the store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from ..errors import InvalidInput

__all__ = [
    "Alert",
    "AlertRule",
    "Distribution",
    "DriftResult",
    "LabelImport",
    "Monitor",
    "MonitorRun",
    "Performance",
    "Reference",
    "TestResult",
    "VariantComparison",
    "VariantEstimate",
]

TestKind = Literal["drift", "quality", "prediction", "multivariate"]
RunStatus = Literal["ok", "no_data", "failed"]
AlertStatus = Literal["open", "resolved"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class TestResult:
    """One test on one column (``column`` is ``"*"`` for a test over all columns).

    ``statistic`` is the test's figure (an effect size such as PSI, or a p-value for tests that
    only give one); ``drifted`` says whether it crossed ``threshold`` in the test's direction.
    ``p_value`` is given when p-values were asked for, already corrected for multiple testing
    (``DriftResult.correction`` names the method). ``detail`` holds test-specific facts that
    fit in JSON (new categories, the KS location, the share missing).
    """

    __test__ = False  # not a pytest test class, despite its name

    column: str
    test: str
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None = None
    kind: TestKind = "drift"
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Distribution:
    """A column's reference and current distributions on the same bins, for charts.

    Numeric: ``bins`` are the ``len(reference) + 1`` edges (the outer ones finite: the
    reference's range widened to hold the current values). Categorical: ``bins`` are the
    category labels. ``reference`` and ``current`` are proportions (each sums to 1, or all 0
    when a side has no value).
    """

    column: str
    kind: Literal["numeric", "categorical"]
    bins: tuple[float | str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True)
class DriftResult:
    """One comparison of a current window (or frame) with a reference.

    ``dataset_drift`` follows ``rule``, stated in words (for example "drift when at least 30% of
    the tested columns drift"); ``drifted_columns`` lists the columns with at least one drifted
    drift test; ``share_drifted`` is their share of the tested columns.
    """

    tests: tuple[TestResult, ...]
    dataset_drift: bool
    drifted_columns: tuple[str, ...]
    share_drifted: float
    rule: str
    correction: str | None
    reference_rows: int
    current_rows: int
    distributions: tuple[Distribution, ...] = ()

    def to_dict(self, *, distributions: bool = False) -> dict[str, Any]:
        """JSON-safe form (NaN and infinities as None); charts' data only when asked for."""
        out: dict[str, Any] = {
            "dataset_drift": self.dataset_drift,
            "drifted_columns": list(self.drifted_columns),
            "share_drifted": _finite(self.share_drifted),
            "rule": self.rule,
            "correction": self.correction,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "tests": [
                {
                    "column": r.column,
                    "test": r.test,
                    "kind": r.kind,
                    "statistic": _finite(r.statistic),
                    "threshold": _finite(r.threshold),
                    "p_value": _finite(r.p_value),
                    "drifted": r.drifted,
                    **({"detail": dict(r.detail)} if r.detail else {}),
                }
                for r in self.tests
            ],
        }
        if distributions:
            out["distributions"] = [
                {
                    "column": d.column,
                    "kind": d.kind,
                    "bins": list(d.bins),
                    "reference": list(d.reference),
                    "current": list(d.current),
                }
                for d in self.distributions
            ]
        return out


@dataclass(frozen=True)
class Reference:
    """A stored reference sketch, built once from ``source``.

    ``source`` says where the rows came from: ``dataset:NAME@VERSION`` or
    ``model:NAME/VERSION`` (the training data its lineage names). ``sketch_blob`` is the
    content hash of the serialized sketch in the blob store. ``note`` says what was left out
    and why (the target column; outputs not sketched when the model version does not load
    safely), None when nothing was.
    """

    id: str
    name: str
    source: str
    dataset_version_id: str | None
    model_version_id: str | None
    sketch_blob: str
    columns: tuple[str, ...]
    rows: int
    created_by: str
    created_at: int
    note: str | None = None


_RULE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.\-]*(?::[^<>=!\s][^<>=!]*?)?)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class AlertRule:
    """A condition on a monitor run's figures, written ``METRIC OP NUMBER``.

    ``METRIC`` is one of: ``drift_share`` (share of drifted columns), ``dataset_drift`` (1 or
    0), a test name (``psi``: any column), ``TEST:COLUMN`` (``psi:input.age``), or a
    performance metric (``accuracy``, ``f1``, ``roc_auc``, ``mae``, ``rmse``, ``coverage`` …).
    ``OP`` is one of ``> >= < <=``. Example: ``AlertRule.parse("accuracy<0.8")``.
    """

    metric: str
    op: Literal[">", ">=", "<", "<="]
    threshold: float

    @classmethod
    def parse(cls, text: str) -> AlertRule:
        """The rule written in ``text``; InvalidInput saying the expected form otherwise."""
        match = _RULE.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(
                f"alert rule {text!r} is not METRIC OP NUMBER (e.g. 'drift_share>0.3', "
                "'psi:input.age>=0.2', 'accuracy<0.8'; OP one of > >= < <=)"
            )
        value = float(match["value"])
        if not math.isfinite(value):
            raise InvalidInput(f"alert rule {text!r}: the threshold must be a finite number")
        return cls(match["metric"].strip(), match["op"], value)  # type: ignore[arg-type]

    @property
    def key(self) -> str:
        """The rule's canonical text (alerts are deduplicated on it)."""
        return f"{self.metric}{self.op}{self.threshold:g}"

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the condition (NaN never does)."""
        if math.isnan(value):
            return False
        if self.op == ">":
            return value > self.threshold
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<":
            return value < self.threshold
        return value <= self.threshold


@dataclass(frozen=True)
class Monitor:
    """A monitor of one deployment's prediction log against a reference.

    ``reference`` is what the user asked for (``auto``: the training data of the model version
    serving the window, from lineage; or ``NAME@VERSION`` of a dataset); ``reference_id`` the
    stored :class:`Reference` in use (None until built). ``window_s``: each run looks at the last
    ``window_s`` seconds of the log; ``every_s``: how often ``run_due`` runs it (None: only when
    asked). ``tests``: drift tests by name (empty: the defaults); ``columns``: the log's columns
    to test (``input.*`` and ``output.*`` names; empty: every input and output column);
    ``thresholds``: per test name or ``TEST:COLUMN``. ``task`` says how labels are scored
    (None: guessed from the labels).
    """

    id: str
    name: str
    deployment: str
    reference: str
    reference_id: str | None
    window_s: int
    every_s: int | None
    tests: tuple[str, ...]
    columns: tuple[str, ...]
    thresholds: Mapping[str, float]
    alerts: tuple[AlertRule, ...]
    webhook: str | None
    webhook_format: Literal["json", "slack"]
    task: Task | None
    description: str | None
    created_by: str
    created_at: int
    updated_at: int
    last_run_at: int | None

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)

    @property
    def every(self) -> timedelta | None:
        return None if self.every_s is None else timedelta(seconds=self.every_s)


@dataclass(frozen=True)
class Performance:
    """Model quality on the labelled rows of a window.

    ``metrics``: classification: accuracy, precision, recall, f1 (macro for more than two
    classes), roc_auc and log_loss when probabilities were logged, calibration error (ECE);
    regression: mae, rmse, mape. ``rows``: labelled rows scored; ``predictions``: rows logged
    in the window; ``coverage`` = rows / predictions. ``by_version``: the same metrics per model
    version (``NAME/VERSION``); ``by_slice``: per value of each slice column.
    """

    task: Task
    metrics: Mapping[str, float]
    rows: int
    predictions: int
    coverage: float
    by_version: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    by_slice: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorRun:
    """One pass of a monitor over ``[window_start, window_end)``.

    ``status``: ``ok``; ``no_data`` (no logged row in the window: nothing tested, nothing
    alerted); ``failed`` (``error`` says why; the run is still recorded). ``model_versions``:
    the ``NAME/VERSION`` that answered in the window. ``alerts``: ids of the alerts open after
    this run.
    """

    id: str
    monitor: str
    started_at: int
    finished_at: int
    window_start: int
    window_end: int
    status: RunStatus
    rows: int
    model_versions: tuple[str, ...]
    drift: DriftResult | None
    performance: Performance | None
    alerts: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Alert:
    """An alert event: open while its rule holds on consecutive runs, then resolved.

    ``rule`` is the rule's key (``psi:input.age>0.2``); ``value`` the figure at the latest
    run that saw it; ``occurrences`` how many runs it held on. ``delivery``: what the webhook
    answered for the latest notification (None: no webhook).
    """

    id: str
    monitor: str
    rule: str
    status: AlertStatus
    value: float | None
    threshold: float
    message: str
    occurrences: int
    opened_at: int
    last_seen_at: int
    resolved_at: int | None
    delivery: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class LabelImport:
    """What ``log_labels`` stored: ``rows`` labels, of which ``updated`` replaced earlier ones."""

    deployment: str
    rows: int
    updated: int


@dataclass(frozen=True)
class VariantEstimate:
    """One variant's figure in a comparison: ``value`` over ``n`` samples, with its confidence
    interval."""

    variant: str
    model_versions: tuple[str, ...]
    n: int
    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class VariantComparison:
    """A candidate variant against the baseline on one metric.

    ``difference`` = candidate - baseline with its confidence interval; ``test`` names the
    significance test (``two-proportion z``, ``welch t``, ``bootstrap``) and ``p_value`` its
    two-sided result; ``enough_data`` says whether both variants reached ``min_samples``.
    ``decision`` is what the rollout step should do: ``promote`` (significantly better),
    ``rollback`` (significantly worse), ``continue`` (no significant difference yet, or not enough
    data).
    """

    deployment: str
    metric: str
    higher_is_better: bool
    baseline: VariantEstimate
    candidate: VariantEstimate
    difference: float
    ci_low: float
    ci_high: float
    test: str
    p_value: float
    confidence: float
    significant: bool
    enough_data: bool
    min_samples: int
    decision: Literal["promote", "rollback", "continue"]
    window_start: int
    window_end: int
    others: tuple[VariantEstimate, ...] = ()


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)
