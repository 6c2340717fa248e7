"""Alerts that act: what a trace monitor's alert starts when it opens.

``rollback`` moves the monitored prompt alias back to the version it held before its current
one, through ``set_alias`` and so through the prompt's approval policy: an unprotected alias
moves at once; a protected one opens an approval request and nothing moves until approvers
decide (whether a version approved before may come back unapproved is the policy's call, and
the policies have no such exception). ``reevaluate`` evaluates the version the alias points at
now on the action's evaluation dataset with the monitor's scorers: a new evaluation run,
named ``monitor re-evaluation: ...`` (such runs are never taken as the approved baseline).

Each action is one ``monitor.action`` audit event on the monitor, with the alert, the rule and
the outcome; the alias move and the evaluation have their own events too. An action runs once
per alert episode: only when its alert opens, not while it stays open.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import LoopwrightError
from ..store import schema as t
from ..store.audit import append_event
from .llm_entities import ActionOutcome, AlertAction, TraceMonitor
from .llm_spec import prompt_parts

if TYPE_CHECKING:
    from ..evaluation.service import EvaluationService
    from ..prompts.service import PromptService
    from ..store.home import Store
    from .entities import Alert
    from .llm_scoring import LoadedScorer

__all__ = ["REEVALUATION_PREFIX", "previous_version", "run_action"]

REEVALUATION_PREFIX = "monitor re-evaluation: "


def previous_version(store: Store, prompt_id: str, alias: str, current: int) -> int | None:
    """The version ``alias`` held before it moved to ``current`` (the newest such move in the
    audit log), None when it never held another."""
    e = t.audit_events.c
    with store.db.read() as conn:
        rows = conn.execute(
            sa.select(e.before_json, e.after_json)
            .where(
                e.subject_type == "prompt_alias",
                e.subject_id == f"{prompt_id}:{alias}",
                e.action == "prompt_alias.set",
            )
            .order_by(e.seq.desc())
        ).all()
    for row in rows:
        before = json.loads(row.before_json) if row.before_json else {}
        after = json.loads(row.after_json) if row.after_json else {}
        if after.get("version") == current and before.get("version") not in (None, current):
            return int(before["version"])
    return None


def run_action(
    store: Store,
    action: AlertAction,
    monitor: TraceMonitor,
    alert: Alert,
    *,
    prompts: PromptService,
    evaluation: EvaluationService,
    scorers: list[LoadedScorer],
    actor: str,
) -> ActionOutcome:
    """Carry out ``action`` for the newly opened ``alert`` and audit what it did."""
    try:
        if action.kind == "rollback":
            outcome = _rollback(store, action, monitor, alert, prompts)
        else:
            outcome = _reevaluate(action, monitor, alert, prompts, evaluation, scorers)
    except LoopwrightError as exc:
        outcome = _outcome(alert, action, "failed", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # an endpoint down, a scorer's bug: the monitor's pass goes on
        outcome = _outcome(alert, action, "failed", f"{type(exc).__name__}: {exc}"[:2000])
    with store.db.write() as conn:
        append_event(
            conn,
            actor=actor,
            action="monitor.action",
            subject_type="monitor",
            subject_id=monitor.monitor.id,
            after={"monitor": monitor.name, **outcome.to_dict()},
        )
    return outcome


def _outcome(
    alert: Alert, action: AlertAction, status: str, detail: str, **more: object
) -> ActionOutcome:
    return ActionOutcome(alert.id, alert.rule, action.kind, status, detail, **more)  # type: ignore[arg-type]


def _rollback(
    store: Store,
    action: AlertAction,
    monitor: TraceMonitor,
    alert: Alert,
    prompts: PromptService,
) -> ActionOutcome:
    assert monitor.selection.prompt is not None and action.alias is not None
    name = prompt_parts(monitor.selection.prompt)[0]
    alias = action.alias
    current = prompts.resolve(name, alias).version
    prompt = prompts.get(name)
    previous = previous_version(store, prompt.id, alias, current)
    if previous is None:
        return _outcome(
            alert, action, "refused",
            f"alias {alias!r} of prompt {name!r} has held no version before {current}: nothing "
            "to roll back to",
            from_version=current,
        )  # fmt: skip
    comment = (
        f"rollback by monitor {monitor.name!r} on alert {alert.id} ({alert.rule}): {alert.message}"
    )[:1000]
    change = prompts.set_alias(name, alias, previous, comment=comment)
    if change.applied:
        return _outcome(
            alert, action, "applied",
            f"alias {alias!r} of prompt {name!r} moved back from version {current} to {previous}",
            from_version=current, to_version=previous,
        )  # fmt: skip
    assert change.request is not None
    return _outcome(
        alert, action, "pending_approval",
        f"alias {alias!r} of prompt {name!r} is protected by its approval policy: request "
        f"{change.request.id} asks to move it from version {current} back to {previous}; "
        "nothing moves until it is approved",
        request_id=change.request.id, from_version=current, to_version=previous,
    )  # fmt: skip


def _reevaluate(
    action: AlertAction,
    monitor: TraceMonitor,
    alert: Alert,
    prompts: PromptService,
    evaluation: EvaluationService,
    scorers: list[LoadedScorer],
) -> ActionOutcome:
    from ..evaluation.targets import PromptTarget

    assert monitor.selection.prompt is not None and action.alias is not None
    assert action.dataset and action.endpoint and action.model
    name = prompt_parts(monitor.selection.prompt)[0]
    version = prompts.load(f"prompts:/{name}@{action.alias}")
    target = PromptTarget(version, endpoint=action.endpoint, model=action.model)
    chosen = [s.key if not s.key.startswith("builtin:") else s.scorer for s in scorers]
    result = evaluation.evaluate(
        target,
        action.dataset,
        chosen,
        name=f"{REEVALUATION_PREFIX}{version.uri} by monitor {monitor.name} (alert {alert.id})",
    )
    means = {k: round(v, 6) for k, v in result.aggregates.items() if k.endswith("/mean")}
    return _outcome(
        alert, action, "applied",
        f"evaluated {version.uri} on {action.dataset}: {len(result.rows)} rows, "
        f"{result.failed_rows} failed, {means}",
        evaluation_run_id=result.run_id, from_version=version.version,
    )  # fmt: skip
