"""Evaluation gates: a prompt (or model) version goes further only if its evaluation run passes.

An evaluation gate is a gate spec of ``kind: evaluation``; its rules read the aggregates an
evaluation run recorded (``client.evaluation.evaluate``)::

    name: support-answer-quality
    kind: evaluation
    dataset: support-eval              # the evaluation dataset (NAME, or NAME@vN to pin one)
    rules:
      - evaluation.correct/mean >= 0.9 # an aggregate of a scorer
      - evaluation.failed_rows <= 0    # no row errors (target or scorer)

``client.gates.check_evaluation(spec, "prompts:/support/4", run_id)`` checks it where the
results are stored (the server, for a remote client: a caller sends no outcomes it computed):
the run must have evaluated that version (its target is the version's URI) on a version of the
gate's dataset, and every judge it used must be a registered, approved judge version (an
outcome of its own, ``judges approved``). The result is a gate result like a holdout gate's: the
same verdict tag (``loopwright.gate.<gate>`` on the version), audit event and listing, plus the
evaluation run, the dataset version and its content hash, and the scorer versions.

Example:
    >>> from loopwright.evaluation.entities import EvaluationRun
    >>> spec = load_gate_spec({"name": "q", "kind": "evaluation", "dataset": "qa",
    ...                        "rules": ["evaluation.exact/mean >= 0.5"]})
    >>> run = EvaluationRun("r1", "e", "prompts:/p/1", "dv1", "h", {}, {"exact/mean": 0.75},
    ...                     4, 0, "ada", 0)
    >>> [(o.rule, o.value, o.passed) for o in outcomes_of(spec, run, unapproved=[])]
    [('evaluation.exact/mean >= 0.5', 0.75, True), ('judges approved', 0.0, True)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._numbers import is_number
from ..errors import Conflict, InvalidInput
from .entities import GateRule, GateSpec, RuleOutcome
from .gates import _verdict, load_gate_spec

if TYPE_CHECKING:
    from ..evaluation.entities import EvaluationRun

__all__ = ["JUDGES_RULE", "check_run_matches", "judge_refs", "outcomes_of", "split_subject"]

JUDGES_RULE = "judges approved"
SUBJECT_TAG = "loopwright.eval.subject"  # a run tag naming the version a callable target ran


def split_subject(subject: object) -> tuple[str, str, int | str]:
    """``("prompt" | "model", name, version number or alias)`` of a ``prompts:/`` or
    ``models:/`` URI."""
    if isinstance(subject, str) and subject.startswith("prompts:/"):
        from ..prompts.uris import parse_prompt_uri

        name, ref = parse_prompt_uri(subject)
        return "prompt", name, ref
    if isinstance(subject, str) and subject.startswith("models:/"):
        from ..registry.loading import parse_model_uri

        parsed = parse_model_uri(subject)
        if parsed.name is not None and parsed.ref is not None:
            ref = parsed.ref
            return "model", parsed.name, int(ref) if is_number(str(ref)) else str(ref)
    raise InvalidInput(
        f"an evaluation gate is checked on a version: prompts:/NAME/N, prompts:/NAME@ALIAS, "
        f"models:/NAME/N or models:/NAME@ALIAS, not {str(subject)[:80]!r}"
    )


def check_run_matches(
    spec: GateSpec,
    run: EvaluationRun,
    *,
    uri: str,
    dataset: str | None,
    number: int | None,
    run_tags: Mapping[str, str],
) -> None:
    """Refuse a run that is not evidence for ``uri`` under ``spec``: another target, no
    dataset version, or a version of another dataset than the gate's.

    ``dataset`` and ``number`` name the run's dataset version (None: unversioned records).
    """
    if spec.kind != "evaluation":
        raise InvalidInput(
            f"gate {spec.name!r} is a holdout gate; evaluation runs are checked by gates of "
            "'kind: evaluation'"
        )
    if run.target != uri and run_tags.get(SUBJECT_TAG) != uri:
        raise Conflict(
            f"evaluation run {run.run_id} evaluated {run.target!r}, not {uri}; evaluate the "
            f"version itself (PromptTarget(client.prompts.load({uri!r}), ...)) or tag a "
            f"callable's run {SUBJECT_TAG}={uri}"
        )
    if dataset is None or number is None:
        raise Conflict(
            f"evaluation run {run.run_id} ran on unversioned records; a gate needs a run on a "
            f"version of evaluation dataset {spec.dataset!r} (its content hash is the evidence)"
        )
    want, _, pinned = spec.dataset.partition("@")
    if dataset != want or (pinned and pinned != f"v{number}"):
        raise Conflict(
            f"evaluation run {run.run_id} ran on {dataset}@v{number}; gate {spec.name!r} "
            f"asks for {spec.dataset!r}"
        )


def judge_refs(scorers: Mapping[str, str]) -> tuple[list[tuple[str, int, str]], list[str]]:
    """The judges an evaluation run used: registered ``(name, version, digest prefix)`` and
    the names of judges passed as objects (never approved: they have no version)."""
    registered, unregistered = [], []
    for name, described in scorers.items():
        parts = described.split(" ")
        if len(parts) != 3 or parts[1] != "judge":
            continue
        ref, _, digest = parts
        scorer, _, number = ref.rpartition("/")
        if scorer and is_number(number):
            registered.append((scorer, int(number), digest))
        else:
            unregistered.append(name)
    return registered, unregistered


def outcomes_of(
    spec: GateSpec, run: EvaluationRun, *, unapproved: Sequence[str]
) -> list[RuleOutcome]:
    """Each rule over the run's aggregates, then ``judges approved`` (fails naming every judge
    that is not an approved registered version)."""
    outcomes = [_outcome(rule, run) for rule in spec.rules]
    detail = f"not approved: {', '.join(unapproved)}" if unapproved else ""
    outcomes.append(RuleOutcome(JUDGES_RULE, float(len(unapproved)), not unapproved, detail))
    return outcomes


def _outcome(rule: GateRule, run: EvaluationRun) -> RuleOutcome:
    value = run.aggregates.get(rule.name)
    if value is None:
        known = ", ".join(sorted(run.aggregates)) or "none"
        return RuleOutcome(
            rule.text,
            None,
            False,
            f"run {run.run_id} has no aggregate {rule.name!r}; it has {known}",
        )
    return _verdict(rule, float(value), f"{run.rows} rows, {run.failed_rows} failed")


def spec_of(source: GateSpec | Mapping[str, object] | str) -> GateSpec:
    """A checked evaluation gate spec from a spec, a mapping or a YAML path."""
    spec = source if isinstance(source, GateSpec) else load_gate_spec(source)
    if spec.kind != "evaluation":
        raise InvalidInput(
            f"gate {spec.name!r} is a holdout gate (evaluate_gate checks it on a model); an "
            "evaluation run is checked by a gate of 'kind: evaluation'"
        )
    return spec
