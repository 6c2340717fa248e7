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

A spec of ``kind: evaluation`` is an evaluation gate instead: ``evaluation.<aggregate>`` rules
over a recorded evaluation run of a prompt or model version, checked where results are stored
(:mod:`loopwright.loop.evaluation_gates`, ``client.gates.check_evaluation``).

Example:
    >>> rule = parse_rule("metrics.auc >= 0.85")
    >>> (rule.namespace, rule.name, rule.op, rule.threshold)
    ('metrics', 'auc', '>=', 0.85)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import InvalidInput, NotFound
from ..store import limits
from ._gate_scoring import (
    FAIRNESS_METRICS,
    LATENCY_METRICS,
    METRICS,
    PROBABILITY_METRICS,
    Scores,
    read_holdout,
    score_version,
)
from .entities import GateResult, GateRule, GateSpec, RuleOutcome

if TYPE_CHECKING:
    from ..client import Client
    from ..registry.entities import ModelVersion

__all__ = [
    "FAIRNESS_METRICS",
    "LATENCY_METRICS",
    "METRICS",
    "check_gate_name",
    "evaluate_gate",
    "load_gate_spec",
    "parse_rule",
]

_KNOWN: Mapping[str, frozenset[str]] = {
    "metrics": METRICS,
    "latency": LATENCY_METRICS,
    "fairness": FAIRNESS_METRICS,
    "vs_champion": METRICS,
    "evaluation": frozenset(),
}
_OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_RULE = re.compile(
    r"^\s*(?P<namespace>[A-Za-z_][A-Za-z0-9_]*)\.(?P<name>[A-Za-z_][A-Za-z0-9_./-]*)\s*"
    r"(?P<op>>=|<=|==|>|<)\s*(?P<number>\S+)\s*$"
)
# An evaluation run's aggregates are named by its scorers: any name, checked when the gate runs.
_OPEN_NAMESPACES = frozenset({"evaluation"})
_GATE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.LOOP_NAME - 1}}}")
_SPEC_KEYS = (
    "name", "kind", "dataset", "target", "rules", "sensitive", "champion", "task", "latency_rows",
)  # fmt: skip
_EVALUATION_KEYS = ("name", "kind", "dataset", "rules")
MAX_LATENCY_ROWS = 10_000


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
    if namespace not in _OPEN_NAMESPACES and name not in _KNOWN[namespace]:
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
    kind = data.get("kind", "holdout")
    if kind not in ("holdout", "evaluation"):
        raise InvalidInput(f"{where}: kind {kind!r} must be holdout or evaluation")
    if kind == "evaluation":
        return _evaluation_spec(where, data)
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
    misplaced = [r.text for r in parsed if r.namespace == "evaluation"]
    if misplaced:
        raise InvalidInput(
            f"{where}: {misplaced[0]!r} reads an evaluation run; put evaluation rules in a gate "
            "of 'kind: evaluation'"
        )
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


def _evaluation_spec(where: str, data: Mapping[str, Any]) -> GateSpec:
    """An evaluation gate: ``evaluation.*`` rules over a run on the evaluation dataset."""
    unknown = sorted(str(k) for k in data if k not in _EVALUATION_KEYS)
    if unknown:
        raise InvalidInput(
            f"{where} has unknown keys {unknown}; an evaluation gate takes "
            f"{', '.join(_EVALUATION_KEYS)}"
        )
    missing = [k for k in ("name", "dataset", "rules") if data.get(k) in (None, "")]
    if missing:
        raise InvalidInput(f"{where} lacks {', '.join(missing)} (see loopwright.loop.gates)")
    name = check_gate_name(data["name"])
    dataset = _text(where, "dataset", data["dataset"], 600)
    rules = data["rules"]
    if isinstance(rules, str) or not isinstance(rules, list) or not rules:
        raise InvalidInput(
            f"{where}: rules must be a non-empty list like 'evaluation.correct/mean >= 0.9'"
        )
    parsed = tuple(parse_rule(rule) for rule in rules)
    other = [r.text for r in parsed if r.namespace != "evaluation"]
    if other:
        raise InvalidInput(
            f"{where}: {other[0]!r} is not an evaluation rule; an evaluation gate's rules read "
            "the run's aggregates: 'evaluation.<aggregate> OP NUMBER' (e.g. "
            "'evaluation.failed_rows <= 0')"
        )
    return GateSpec(name, dataset, "", parsed, kind="evaluation")


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
    if spec.kind == "evaluation":
        raise InvalidInput(
            f"gate {spec.name!r} is an evaluation gate: check it on an evaluation run with "
            "client.gates.check_evaluation(spec, subject, evaluation_run_id)"
        )
    parsed = parse_model_uri(model_uri)
    if parsed.kind != "models":
        raise InvalidInput(
            f"model {model_uri!r} must be a registered version: models:/NAME/N or "
            "models:/NAME@ALIAS"
        )
    assert parsed.name is not None and parsed.ref is not None
    candidate = client.registry.resolve(parsed.name, parsed.ref)
    dataset = client.datasets.get(spec.dataset)
    frame = read_holdout(client, dataset, spec)
    rules = spec.rules
    needs_latency = any(r.namespace == "latency" for r in rules)
    scores = score_version(client, candidate, frame, spec, trusted=trusted, latency=needs_latency)
    champion, champion_scores, champion_note = None, None, ""
    if any(r.namespace == "vs_champion" for r in rules):
        champion, champion_note = _champion(client, spec, candidate)
        if champion is not None and champion.id != candidate.id:  # else: no difference
            champion_scores = score_version(
                client, champion, frame, spec, trusted=trusted, latency=False
            )
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


# --- checking the rules -------------------------------------------------------------------------


def _check(
    rule: GateRule,
    scores: Scores,
    champion: ModelVersion | None,
    champion_scores: Scores | None,
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


def _metric(scores: Scores, name: str) -> tuple[float | None, str]:
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
