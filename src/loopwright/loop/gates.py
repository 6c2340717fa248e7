"""Evaluation gates: declarative rules a model version must meet on a holdout dataset version
before it goes further (a canary, a promotion).

A gate spec names the holdout, its label column and the rules::

    name: churn-release
    dataset: churn-holdout@v2          # NAME@vN, NAME@ALIAS, or NAME for the latest version
    target: churned
    sensitive: [gender]                # the columns fairness rules group by
    champion: models:/churn@champion   # the model to beat (default: the model's @champion)
    rules:
      - metrics.auc >= 0.85
      - latency.p95_ms <= 20
      - fairness.demographic_parity_ratio >= 0.8
      - vs_champion.auc >= -0.005

:func:`evaluate_gate` scores the candidate on the holdout with the registry's evaluation code
(``registry/reports/evaluation.py``; AUC and log loss with monitoring's scorer of class
probabilities), times its ``predict`` one row at a time, scores the champion on the same rows,
checks every rule and records the result (``client.gates.record``): the model version is
tagged ``loopwright.gate.<name>`` = ``passed`` or ``failed``.

Example:
    >>> rule = parse_rule("metrics.auc >= 0.85")
    >>> (rule.namespace, rule.name, rule.op, rule.threshold)
    ('metrics', 'auc', '>=', 0.85)
"""

from __future__ import annotations

import math
import operator
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import InvalidInput, LoopwrightError, NotFound
from ..store import limits
from .entities import GateResult, GateRule, GateSpec, RuleOutcome

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from ..data.entities import DatasetVersion
    from ..registry.entities import ModelVersion
    from ..registry.packaging.loaded import LoadedModel

__all__ = [
    "FAIRNESS_METRICS",
    "LATENCY_METRICS",
    "METRICS",
    "check_gate_name",
    "evaluate_gate",
    "load_gate_spec",
    "parse_rule",
]

# Metrics computed on the holdout (``auc`` is ``roc_auc``); ``vs_champion`` takes the same names.
METRICS = frozenset(
    {"accuracy", "precision", "recall", "f1", "auc", "roc_auc", "log_loss", "rmse", "mae", "r2"}
)
PROBABILITY_METRICS = frozenset({"auc", "roc_auc", "log_loss"})
LATENCY_METRICS = frozenset({"p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms"})
# The registry's fairness figures: ratios (1 is parity) and differences (0 is parity).
FAIRNESS_METRICS = frozenset(
    {
        "demographic_parity_ratio",
        "disparate_impact_ratio",
        "demographic_parity_difference",
        "equal_opportunity_difference",
        "equalized_odds_difference",
    }
)
_KNOWN: Mapping[str, frozenset[str]] = {
    "metrics": METRICS,
    "latency": LATENCY_METRICS,
    "fairness": FAIRNESS_METRICS,
    "vs_champion": METRICS,
}
_OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_RULE = re.compile(
    r"^\s*(?P<namespace>[A-Za-z_][A-Za-z0-9_]*)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?P<op>>=|<=|==|>|<)\s*(?P<number>\S+)\s*$"
)
_GATE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.LOOP_NAME - 1}}}")
_SPEC_KEYS = ("name", "dataset", "target", "rules", "sensitive", "champion", "task", "latency_rows")
_DATA_SUFFIXES = (".parquet", ".pq", ".csv")
MAX_LATENCY_ROWS = 10_000
_WARMUP_CALLS = 5  # predict calls before timing: the first ones pay for lazy imports and caches


# --- rules and specs ---------------------------------------------------------------------------


def parse_rule(text: str) -> GateRule:
    """``metrics.auc >= 0.85`` as a :class:`GateRule`; InvalidInput names what is wrong."""
    if not isinstance(text, str) or len(text) > 400:
        raise InvalidInput(
            f"gate rule {str(text)[:80]!r} must be text like 'metrics.auc >= 0.85' "
            "(at most 400 characters)"
        )
    match = _RULE.match(text)
    if match is None:
        raise InvalidInput(
            f"gate rule {text!r} is not NAMESPACE.METRIC OP NUMBER; operators: "
            f"{', '.join(_OPS)} (e.g. 'metrics.auc >= 0.85', 'latency.p95_ms <= 20')"
        )
    namespace, name, op = match["namespace"], match["name"], match["op"]
    if namespace not in _KNOWN:
        raise InvalidInput(
            f"gate rule {text!r}: unknown namespace {namespace!r}; use one of {', '.join(_KNOWN)}"
        )
    if name not in _KNOWN[namespace]:
        raise InvalidInput(
            f"gate rule {text!r}: {namespace} has no metric {name!r}; known: "
            f"{', '.join(sorted(_KNOWN[namespace]))}"
        )
    try:
        threshold = float(match["number"])
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise InvalidInput(
            f"gate rule {text!r}: the threshold {match['number']!r} is not a finite number"
        )
    return GateRule(cast(Any, namespace), name, cast(Any, op), threshold, text.strip())


def check_gate_name(name: object) -> str:
    if not isinstance(name, str) or not _GATE_NAME.fullmatch(name):
        raise InvalidInput(
            f"gate name {str(name)[:80]!r} must be 1-{limits.LOOP_NAME} letters, digits, '.', "
            "'_' or '-', starting with a letter or digit (e.g. 'churn-release')"
        )
    return name


def load_gate_spec(source: str | Path | Mapping[str, Any]) -> GateSpec:
    """A gate spec from a YAML file (a path) or a mapping with the same keys."""
    where = "the gate spec"
    if isinstance(source, str | Path):
        where = f"gate spec {str(source)!r}"
        data = _read_yaml(Path(source))
    elif isinstance(source, Mapping):
        data = source
    else:
        raise InvalidInput(
            f"a gate spec is a YAML file path or a mapping, not {type(source).__name__}"
        )
    unknown = sorted(str(k) for k in data if k not in _SPEC_KEYS)
    if unknown:
        raise InvalidInput(f"{where} has unknown keys {unknown}; keys: {', '.join(_SPEC_KEYS)}")
    missing = [k for k in ("name", "dataset", "target", "rules") if data.get(k) in (None, "")]
    if missing:
        raise InvalidInput(f"{where} lacks {', '.join(missing)} (see loopwright.loop.gates)")
    name = check_gate_name(data["name"])
    dataset = _text(where, "dataset", data["dataset"], 600)
    target = _text(where, "target", data["target"], limits.KEY)
    rules = data["rules"]
    if isinstance(rules, str) or not isinstance(rules, list) or not rules:
        raise InvalidInput(
            f"{where}: rules must be a non-empty list of rules like 'metrics.auc >= 0.85'"
        )
    parsed = tuple(parse_rule(rule) for rule in rules)
    sensitive_value = data.get("sensitive") or []
    if isinstance(sensitive_value, str):
        sensitive_value = [sensitive_value]
    if not isinstance(sensitive_value, list):
        raise InvalidInput(f"{where}: sensitive must be a column name or a list of them")
    sensitive = tuple(_text(where, "sensitive", s, limits.KEY) for s in sensitive_value)
    if target in sensitive:
        raise InvalidInput(f"{where}: the target {target!r} cannot also be a sensitive column")
    if any(r.namespace == "fairness" for r in parsed) and not sensitive:
        raise InvalidInput(
            f"{where} has fairness rules but no sensitive columns; add 'sensitive: [COLUMN]'"
        )
    champion = data.get("champion")
    if champion is not None:
        champion = _champion_uri(where, champion)
    task = data.get("task")
    if task not in (None, "classification", "regression"):
        raise InvalidInput(f"{where}: task {task!r} must be classification or regression")
    rows = data.get("latency_rows", 200)
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_LATENCY_ROWS:
        raise InvalidInput(f"{where}: latency_rows {rows!r} must be 1-{MAX_LATENCY_ROWS}")
    return GateSpec(name, dataset, target, parsed, sensitive, champion, task, rows)


def _read_yaml(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"gate spec file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"gate spec {str(path)!r} cannot be read as text ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"gate spec {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"gate spec {str(path)!r} must be a YAML mapping with name, dataset, target and rules"
        )
    return data


def _text(where: str, key: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{where}: {key} {str(value)[:80]!r} must be text of 1-{limit} chars")
    return value


def _champion_uri(where: str, value: object) -> str:
    from ..registry.loading import parse_model_uri

    if not isinstance(value, str) or parse_model_uri(value).kind != "models":
        raise InvalidInput(
            f"{where}: champion {str(value)[:80]!r} must be models:/NAME@ALIAS or models:/NAME/N"
        )
    return value


# --- evaluation ---------------------------------------------------------------------------------


@dataclass
class _Scores:
    """What one model measured on the holdout; ``error`` says why nothing was measured."""

    metrics: dict[str, float] = field(default_factory=dict)
    fairness: dict[str, tuple[float, str]] = field(default_factory=dict)  # value, attribute
    latency: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why a figure is missing
    error: str | None = None


def evaluate_gate(
    spec: GateSpec | str | Path | Mapping[str, Any],
    model_uri: str,
    *,
    client: Client | None = None,
    pipeline_run_id: str | None = None,
    trusted: bool = False,
) -> GateResult:
    """Check ``spec`` (a :class:`GateSpec`, or what :func:`load_gate_spec` reads) on the model
    version ``model_uri`` (``models:/NAME/N`` or ``models:/NAME@ALIAS``) and record the result
    through ``client.gates``.

    A rule that cannot be measured (AUC of a model without ``predict_proba``, a model that
    fails on the holdout) fails, its detail saying why; a ``vs_champion`` rule passes when the
    model has no champion yet. ``trusted`` is passed to ``load_model`` for both models.

    Raises:
        NotFound: the model version, the dataset version or the spec's champion model.
        InvalidInput: the holdout lacks the target or a sensitive column, or holds no table.
    """
    from ..registry.loading import parse_model_uri

    if client is None:
        raise InvalidInput(
            "evaluate_gate needs a client to read the model and the holdout: pass client=, "
            "or call lw.evaluate_gate (the default client)"
        )
    if not isinstance(spec, GateSpec):
        spec = load_gate_spec(spec)
    parsed = parse_model_uri(model_uri)
    if parsed.kind != "models":
        raise InvalidInput(
            f"model {model_uri!r} must be a registered version: models:/NAME/N or "
            "models:/NAME@ALIAS"
        )
    assert parsed.name is not None and parsed.ref is not None
    candidate = client.registry.resolve(parsed.name, parsed.ref)
    dataset = client.datasets.get(spec.dataset)
    frame = _read_holdout(client, dataset, spec)
    rules = spec.rules
    needs_latency = any(r.namespace == "latency" for r in rules)
    scores = _score(client, candidate, frame, spec, trusted=trusted, latency=needs_latency)
    champion, champion_scores, champion_note = None, None, ""
    if any(r.namespace == "vs_champion" for r in rules):
        champion, champion_note = _champion(client, spec, candidate)
        if champion is not None and champion.version != candidate.version:
            champion_scores = _score(client, champion, frame, spec, trusted=trusted, latency=False)
    outcomes = [
        _check(rule, scores, champion, champion_scores, champion_note, candidate) for rule in rules
    ]
    return client.gates.record(
        spec,
        model=candidate.model,
        version=candidate.version,
        dataset_version_id=dataset.id,
        outcomes=outcomes,
        champion_version=None if champion is None else champion.version,
        pipeline_run_id=pipeline_run_id,
    )


def _read_holdout(client: Client, dataset: DatasetVersion, spec: GateSpec) -> pd.DataFrame:
    """The dataset version's Parquet and CSV files as one frame, checked for the spec's columns."""
    import pandas as pd

    files = [f.path for f in client.datasets.files(dataset)]
    data = sorted(p for p in files if p.lower().endswith(_DATA_SUFFIXES))
    if not data:
        raise InvalidInput(
            f"dataset version {dataset.ref} holds no Parquet or CSV files "
            f"({', '.join(files[:5]) or 'no files'}); a gate's holdout must be a table"
        )
    with tempfile.TemporaryDirectory(prefix="lw-gate-") as folder:
        client.datasets.download(dataset, folder)
        parts = [
            pd.read_csv(Path(folder) / p) if p.lower().endswith(".csv") else _parquet(folder, p)
            for p in data
        ]
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    missing = [c for c in (spec.target, *spec.sensitive) if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"holdout {dataset.ref} has no column {', '.join(map(repr, missing))} named by gate "
            f"{spec.name!r}; its columns: {', '.join(map(str, frame.columns[:30]))}"
        )
    labelled = frame[frame[spec.target].notna()].reset_index(drop=True)
    if labelled.empty:
        raise InvalidInput(
            f"holdout {dataset.ref} has no row with a {spec.target!r} label; a gate needs labels"
        )
    return labelled


def _parquet(folder: str, path: str) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(Path(folder) / path)


def _champion(
    client: Client, spec: GateSpec, candidate: ModelVersion
) -> tuple[ModelVersion | None, str]:
    """The champion version and a note: why there is none, or that it is the candidate."""
    from ..registry.loading import parse_model_uri

    uri = spec.champion or f"models:/{candidate.model}@champion"
    parsed = parse_model_uri(uri)
    assert parsed.name is not None and parsed.ref is not None
    try:
        champion = client.registry.resolve(parsed.name, parsed.ref)
    except NotFound:
        return None, f"no champion yet ({uri} names no version)"
    if champion.model == candidate.model and champion.version == candidate.version:
        return champion, f"candidate is the champion ({uri})"
    return champion, ""


def _score(
    client: Client,
    version: ModelVersion,
    frame: pd.DataFrame,
    spec: GateSpec,
    *,
    trusted: bool,
    latency: bool,
) -> _Scores:
    """The version's metrics, fairness and (if asked) latency on the holdout."""
    from ..registry.reports.evaluation import evaluate

    label = f"models:/{version.model}/{version.version}"
    scores = _Scores()
    features = frame.drop(columns=[spec.target])
    model = client.load_model(label, trusted=trusted)  # a package that will not load: raised
    try:
        predicted = _column(model.predict(features))
    except LoopwrightError as exc:  # a signature mismatch, say: the gate fails, saying why
        scores.error = f"{label} could not predict on the holdout ({exc})"
        return scores
    except Exception as exc:  # the model's own code failed on these rows: a failed gate
        scores.error = f"{label} failed on the holdout ({type(exc).__name__}: {str(exc)[:300]})"
        return scores
    truth = frame[spec.target].to_numpy()
    try:
        result = evaluate(truth, predicted, task=spec.task)
    except InvalidInput as exc:
        scores.error = f"{label}'s predictions cannot be scored against {spec.target!r}: {exc}"
        return scores
    scores.metrics.update({k: float(v) for k, v in result.metrics.items() if k != "n"})
    if result.task == "classification":
        _probability_metrics(scores, model, features, truth, predicted, label)
    for column in spec.sensitive:
        _fairness(scores, truth, predicted, frame[column], column, result.task)
    if latency:
        try:
            scores.latency.update(_latency(model, features, spec.latency_rows))
        except Exception as exc:  # predict on one row can fail where a batch did not
            scores.notes["latency"] = (
                f"{label} failed on a single row ({type(exc).__name__}: {str(exc)[:300]})"
            )
    return scores


def _probability_metrics(
    scores: _Scores, model: LoadedModel, features: Any, truth: Any, predicted: Any, label: str
) -> None:
    """AUC and log loss from the class probabilities, by monitoring's scorer."""
    import pandas as pd

    from ..monitoring.performance import PREDICTION, PROBABILITIES, score

    if not hasattr(model, "predict_proba"):
        scores.notes["probabilities"] = f"{label} has no predict_proba (auc and log_loss need it)"
        return
    try:
        proba = _matrix(model.predict_proba(features))
    except Exception as exc:  # any failure leaves the figures unmeasured, saying why
        scores.notes["probabilities"] = f"{label}'s predict_proba failed ({exc})"
        return
    frame = pd.DataFrame(
        {PREDICTION: list(predicted), PROBABILITIES: list(proba), "label": list(truth)}
    )
    figures = score(frame, task="classification").metrics
    for name in ("roc_auc", "log_loss"):
        if name in figures:
            scores.metrics[name] = float(figures[name])
    if "roc_auc" in scores.metrics:
        scores.metrics["auc"] = scores.metrics["roc_auc"]
    else:
        scores.notes["probabilities"] = (
            f"{label}'s probabilities do not match its classes or the holdout has one class"
        )


def _fairness(
    scores: _Scores,
    truth: Any,
    predicted: Any,
    groups: pd.Series,
    column: str,
    task: str,
) -> None:
    """The worst value of each fairness figure over the sensitive columns seen so far."""
    from ..registry.reports.evaluation import evaluate

    if task != "classification":
        scores.notes["fairness"] = "fairness figures need a classification"
        return
    try:
        fairness = evaluate(truth, predicted, task="classification", sensitive=groups).fairness
    except InvalidInput as exc:
        scores.notes["fairness"] = f"fairness by {column!r} cannot be computed: {exc}"
        return
    assert fairness is not None
    for name in FAIRNESS_METRICS:
        value = getattr(fairness, name)
        if value is None:
            scores.notes.setdefault(name, f"{name} is undefined by {column!r}")
            continue
        worse = min if name.endswith("_ratio") else max
        known = scores.fairness.get(name)
        if known is None or worse(known[0], value) != known[0]:
            scores.fairness[name] = (float(value), column)


def _latency(model: LoadedModel, features: pd.DataFrame, rows: int) -> dict[str, float]:
    """Milliseconds per ``predict`` of one row, over ``rows`` rows after a warm-up."""
    import numpy as np

    count = min(rows, len(features))
    singles = [features.iloc[i : i + 1] for i in range(count)]
    for row in singles[:_WARMUP_CALLS]:
        model.predict(row)
    times = []
    for row in singles:
        start = time.perf_counter_ns()
        model.predict(row)
        times.append((time.perf_counter_ns() - start) / 1e6)
    measured = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(measured, 50)),
        "p95_ms": float(np.percentile(measured, 95)),
        "p99_ms": float(np.percentile(measured, 99)),
        "mean_ms": float(measured.mean()),
        "max_ms": float(measured.max()),
        "calls": float(count),
    }


def _column(values: Any) -> Any:
    import numpy as np

    if hasattr(values, "columns") and len(values.columns) == 1:  # a one-column frame
        values = values.iloc[:, 0]
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInput(f"the model returned {array.shape} values; a gate needs one per row")
    return array


def _matrix(values: Any) -> Any:
    import numpy as np

    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise InvalidInput(f"predict_proba returned shape {array.shape}, not rows x classes")
    return array


# --- checking the rules -------------------------------------------------------------------------


def _check(
    rule: GateRule,
    scores: _Scores,
    champion: ModelVersion | None,
    champion_scores: _Scores | None,
    champion_note: str,
    candidate: ModelVersion,
) -> RuleOutcome:
    if rule.namespace == "vs_champion":
        if champion is None:
            return RuleOutcome(rule.text, None, True, champion_note)
        if champion_scores is None:  # the candidate is the champion: no difference
            return _verdict(rule, 0.0, champion_note)
        mine, why_mine = _metric(scores, rule.name)
        theirs, why_theirs = _metric(champion_scores, rule.name)
        if mine is None or theirs is None:
            why = why_mine if mine is None else f"champion: {why_theirs}"
            return RuleOutcome(rule.text, None, False, why)
        return _verdict(
            rule, mine - theirs, f"{mine:.6g} vs champion v{champion.version} {theirs:.6g}"
        )
    if rule.namespace == "metrics":
        value, why = _metric(scores, rule.name)
        return RuleOutcome(rule.text, None, False, why) if value is None else _verdict(rule, value)
    if scores.error is not None:
        return RuleOutcome(rule.text, None, False, scores.error)
    if rule.namespace == "latency":
        if rule.name not in scores.latency:
            return RuleOutcome(rule.text, None, False, scores.notes.get("latency", "not measured"))
        calls = int(scores.latency["calls"])
        return _verdict(rule, scores.latency[rule.name], f"{calls} predict calls of one row each")
    found = scores.fairness.get(rule.name)
    if found is None:
        why = scores.notes.get("fairness") or scores.notes.get(rule.name, "not measured")
        return RuleOutcome(rule.text, None, False, why)
    return _verdict(rule, found[0], f"worst over {found[1]!r}")


def _metric(scores: _Scores, name: str) -> tuple[float | None, str]:
    if scores.error is not None:
        return None, scores.error
    if name in scores.metrics:
        return scores.metrics[name], ""
    if name in PROBABILITY_METRICS and "probabilities" in scores.notes:
        return None, scores.notes["probabilities"]
    task = "regression" if "rmse" in scores.metrics else "classification"
    return None, f"{name} is not a {task} metric; measured: {', '.join(sorted(scores.metrics))}"


def _verdict(rule: GateRule, value: float, detail: str = "") -> RuleOutcome:
    passed = math.isfinite(value) and _OPS[rule.op](value, rule.threshold)
    return RuleOutcome(rule.text, value, passed, detail)
