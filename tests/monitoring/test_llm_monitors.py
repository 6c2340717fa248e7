"""Trace monitors (issue 19, quality of LLM traffic) on SQLite and PostgreSQL: online scoring
of real recorded traces (sampled, bounded, idempotent per scorer version, errors per trace),
drift of scores, lengths, tokens, cost and latency against a reference window and against the
approved version's evaluation run, alerts that roll a prompt alias back (applied, or held by
the approval policy) or re-evaluate the current version, and refused input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from _trace_monitor_world import BAD, GOOD, HOUR_MS, T0, concise, picky, record_calls, serve_stub

from loopwright._ids import now_ms
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound
from loopwright.evaluation.service import EvaluationService
from loopwright.evaluation.targets import PromptTarget
from loopwright.governance.users import UserService
from loopwright.monitoring.llm_entities import AlertAction, TraceSelection
from loopwright.monitoring.llm_scoring import in_sample
from loopwright.monitoring.llm_service import TraceMonitorService
from loopwright.monitoring.service import MonitoringService
from loopwright.prompts.service import PromptService
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.serving.predictions import PredictionService
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store
from loopwright.tracing.service import TracingService
from loopwright.tracking.service import TrackingService

ROUTE = TraceSelection(gateway_route="support-chat")
PROD = TraceSelection(prompt="support@production")
BASELINE = f"window:{T0}/{T0 + HOUR_MS}"  # the first hour holds the good traffic


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ada")
    with open_store(settings) as s:
        users = UserService(s, actor="root")
        users.add("root", "admin")
        users.add("ada", "editor")
        users.add("bea", "approver")
        yield s


@pytest.fixture
def tracing(store: Store) -> TracingService:
    return TracingService(store)


@pytest.fixture
def monitors(store: Store) -> TraceMonitorService:
    return TraceMonitorService(store, actor="ada")


def _prompt(store: Store, *, protected: bool) -> PromptService:
    """Prompt 'support' with versions 1 and 2; 'production' moved 1 -> 2 (approved by bea
    when the policy protects it)."""
    rules = (ApprovalRule("alias:production"),) if protected else ()
    ada = PromptService(store, actor="ada")
    ada.create("support", policy=ApprovalPolicy(rules=rules))
    ada.register("support", "Answer briefly: {{ question }}")
    ada.register("support", "Answer: {{ question }}")
    for version in (1, 2):
        change = ada.set_alias("support", "production", version)
        if not change.applied:
            assert change.request is not None
            PromptService(store, actor="bea").approve(change.request.id)
    assert ada.resolve("support", "production").version == 2
    return ada


# --- online scoring ---------------------------------------------------------------------------


def test_scoring_is_bounded_idempotent_and_per_scorer_version(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    record_calls(tracing, start_ms=T0 - HOUR_MS, answers=GOOD[:5])  # the baseline hour
    ids = record_calls(tracing, start_ms=T0, answers=GOOD[:25])
    earlier = f"window:{T0 - HOUR_MS}/{T0}"
    monitor = monitors.create(
        "quality", traces=ROUTE, scorers=["builtin:max_length:{\"limit\": 60}"],
        baseline=earlier, max_scored_per_pass=10,
    )  # fmt: skip
    end = at(T0 + HOUR_MS)
    passes = [monitors.run("quality", at=end) for _ in range(4)]
    progress = [p.scoring for p in passes]
    assert [p.scored for p in progress if p] == [10, 10, 5, 0]
    assert [p.remaining for p in progress if p] == [15, 5, 0, 0]
    # The baseline hour's 5 traces are scored in the first pass too (compared with the same
    # scorer version).
    assert [p.assessments for p in progress if p] == [15, 10, 5, 0]
    assert progress[-1] is not None and progress[-1].already_scored == 25
    # Each trace holds exactly one assessment of the scorer version, written through tracing.
    key = monitor.scorers[0]
    assert key.startswith("builtin:max_length")
    for trace_id in ids:
        found = tracing.assessments(trace_id)
        assert len(found) == 1
        assert found[0].name == "max_length" and found[0].value is True
        assert found[0].source_type == "CODE" and found[0].source_id.startswith("builtin:")
        assert found[0].metadata["loopwright.monitor"] == "quality"
    # A new scorer version (another limit) scores every trace again, once.
    monitors.create(
        "quality-strict", traces=ROUTE, scorers=["builtin:max_length:{\"limit\": 10}"],
        baseline=earlier,
    )  # fmt: skip
    strict = monitors.run("quality-strict", at=end)
    assert strict.scoring is not None and strict.scoring.scored == 25
    assert {len(tracing.assessments(i)) for i in ids} == {2}
    assert strict.figures["score.max_length"] == 0.0  # no answer is 10 characters or less


def test_sample_rate_scores_the_same_hashed_sample(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    ids = record_calls(tracing, start_ms=T0, answers=GOOD)
    monitor = monitors.create(
        "sampled", traces=ROUTE, scorers=["builtin:json_valid"], sample_rate=0.3,
        baseline=BASELINE,
    )  # fmt: skip
    first = monitors.run("sampled", at=at(T0 + HOUR_MS))
    expected = [i for i in ids if in_sample(monitor.monitor.id, i, 0.3)]
    assert first.scoring is not None
    assert first.scoring.sampled == len(expected) == first.scoring.scored
    assert 0 < len(expected) < len(ids)
    scored = {i for i in ids if tracing.assessments(i)}
    assert scored == set(expected)
    again = monitors.run("sampled", at=at(T0 + HOUR_MS))
    assert again.scoring is not None and again.scoring.scored == 0


def test_registered_scorer_errors_are_per_trace_and_not_retried(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    evaluation = EvaluationService(store, tracking=TrackingService(store))
    version = evaluation.register_scorer(picky)
    ids = record_calls(tracing, start_ms=T0, answers=GOOD[:6])
    monitors.create("picky", traces=ROUTE, scorers=["picky"], baseline=BASELINE)
    assert monitors.get("picky").scorers == (version.ref,)  # pinned to the newest version
    run = monitors.run("picky", at=at(T0 + HOUR_MS))
    assert run.run.status == "ok" and run.scoring is not None
    assert run.scoring.scored == 6 and len(run.scoring.errors) == 1
    error = run.scoring.errors[0]
    assert error.trace_id == ids[3] and "cannot score answer 3" in error.error
    stored = tracing.assessments(ids[3])[0]
    assert stored.error is not None and "cannot score answer 3" in stored.error["error_message"]
    assert stored.source_id == version.ref
    assert run.figures["score_errors"] == 1.0
    again = monitors.run("picky", at=at(T0 + HOUR_MS))
    assert again.scoring is not None and again.scoring.scored == 0 and not again.scoring.errors
    # The stored history reads back the same progress.
    history = monitors.history("picky")
    assert history[1].scoring == run.scoring


# --- drift against a baseline -----------------------------------------------------------------


def test_drift_against_a_reference_window_detected_and_not(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    evaluation = EvaluationService(store, tracking=TrackingService(store))
    evaluation.register_scorer(concise)
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=GOOD[::-1])  # same traffic
    record_calls(tracing, start_ms=T0 + 2 * HOUR_MS, answers=BAD, latency_ms=4_000)
    monitors.create(
        "drift", traces=ROUTE, scorers=["concise"], baseline=BASELINE,
        alerts=["drift_share>0.3", "score.concise<0.5", "psi:output_chars>0.2"],
        tests=["psi", "ks"],
    )  # fmt: skip
    same = monitors.run("drift", at=at(T0 + 2 * HOUR_MS))
    assert same.run.status == "ok" and same.run.rows == 40
    assert same.run.drift is not None and not same.run.drift.dataset_drift
    assert same.run.alerts == ()
    assert same.figures["score.concise"] == 1.0
    drifted = monitors.run("drift", at=at(T0 + 3 * HOUR_MS))
    drift = drifted.run.drift
    assert drift is not None and drift.dataset_drift
    assert {"output_chars", "latency_ms", "score.concise"} <= set(drift.drifted_columns)
    assert drifted.figures["score.concise"] == 0.0
    assert drifted.figures["score.concise.delta"] == -1.0
    alerts = MonitoringService(store, PredictionService(str(store.settings.home / "log")))
    open_rules = {a.rule for a in alerts.alerts(monitor="drift", status="open")}
    assert open_rules == {"drift_share>0.3", "score.concise<0.5", "psi:output_chars>0.2"}
    # The results are the usual per-test time series (what charts and Prometheus read).
    with store.db.read() as conn:
        columns = set(
            conn.execute(
                sa.select(t.monitor_results.c.column_name).where(
                    t.monitor_results.c.run_id == drifted.run.id
                )
            ).scalars()
        )
    assert {"output_chars", "latency_ms", "score.concise", "cost_usd"} <= columns


def test_monitoring_service_runs_history_and_reports_trace_monitors(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    monitors.create(
        "via-monitoring", traces=ROUTE, scorers=["builtin:json_valid"], baseline=BASELINE,
        every=timedelta(minutes=5),
    )  # fmt: skip
    later = [0]
    monitoring = MonitoringService(
        store, PredictionService(str(store.settings.home / "log")), actor="ada",
        clock=lambda: now_ms() + later[0],
    )  # fmt: skip
    listed = monitoring.get("via-monitoring")
    assert listed.deployment == "support-chat" and listed.window_s == 3600
    run = monitoring.run("via-monitoring", at=at(T0 + 2 * HOUR_MS))
    assert run.status == "ok" and run.drift is not None and run.drift.dataset_drift
    assert monitoring.history("via-monitoring")[0].id == run.id
    report = monitoring.report("via-monitoring", format="json")
    assert "output_chars" in report
    assert "<svg" in monitoring.report("via-monitoring")
    with pytest.raises(InvalidInput, match="watches traces"):
        monitoring.backfill("via-monitoring", since=timedelta(hours=3))
    assert monitoring.run_due() == []  # it just ran
    later[0] = 600_000  # ten minutes on, the 5-minute schedule is due (an empty window by then)
    due = monitoring.run_due()
    assert [r.monitor for r in due] == ["via-monitoring"] and due[0].status == "no_data"


def test_approved_baseline_is_the_alias_versions_evaluation_run(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    prompts = _prompt(store, protected=False)
    evaluation = EvaluationService(store, tracking=TrackingService(store))
    evaluation.register_scorer(concise)
    evaluation.create_dataset("support-qa")
    evaluation.upsert_records(
        "support-qa", [{"inputs": {"question": f"capital of France? {i}"}} for i in range(30)]
    )
    with serve_stub("Paris is the capital of France ({n}).") as endpoint:
        target = PromptTarget(prompts.load("prompts:/support/2"), endpoint=endpoint, model="m")
        approved = evaluation.evaluate(target, "support-qa", ["concise"])
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, prompt_version="support/1")
    monitors.create(
        "approved", traces=PROD, scorers=["concise"], alerts=["drift_share>0.3"], tests=["psi"]
    )
    fine = monitors.run("approved", at=at(T0 + HOUR_MS))
    assert fine.run.status == "ok", fine.run.error
    assert approved.run_id in (fine.baseline or "") and "prompts:/support/2" in (
        fine.baseline or ""
    )
    assert fine.run.model_versions == ("prompts:/support/2",)
    assert fine.run.rows == 40  # version 1's traces are not the alias's
    assert fine.run.drift is not None and not fine.run.drift.dataset_drift
    tested = {r.column for r in fine.run.drift.tests if r.kind == "drift"}
    assert tested == {"output_chars", "score.concise"}  # what a results table compares
    bad = monitors.run("approved", at=at(T0 + 2 * HOUR_MS))
    assert bad.run.drift is not None and bad.run.drift.dataset_drift
    assert len(bad.run.alerts) == 1


def test_a_failed_pass_is_stored_with_its_reason(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    _prompt(store, protected=False)
    record_calls(tracing, start_ms=T0, answers=GOOD[:5])
    monitors.create("no-eval", traces=PROD, scorers=["builtin:json_valid"])
    failed = monitors.run("no-eval", at=at(T0 + HOUR_MS))
    assert failed.run.status == "failed"
    assert failed.run.error is not None and "has no evaluation run" in failed.run.error
    assert failed.scoring is not None and failed.scoring.scored == 5  # scored all the same
    assert monitors.history("no-eval")[0].run.error == failed.run.error
    monitors.create(
        "empty-baseline", traces=ROUTE, scorers=["builtin:json_valid"],
        baseline=f"window:{T0 - 2 * HOUR_MS}/{T0 - HOUR_MS}",
    )  # fmt: skip
    empty = monitors.run("empty-baseline", at=at(T0 + HOUR_MS))
    assert empty.run.status == "failed" and "holds no rows" in (empty.run.error or "")
    nothing = monitors.run("empty-baseline", at=at(T0 - 5 * HOUR_MS))
    assert nothing.run.status == "no_data" and nothing.scoring is None


# --- alerts that act --------------------------------------------------------------------------


def _audit(store: Store, action: str) -> list[dict[str, object]]:
    e = t.audit_events.c
    with store.db.read() as conn:
        rows = conn.execute(
            sa.select(e.after_json, e.actor).where(e.action == action).order_by(e.seq)
        ).all()
    return [{**json.loads(r.after_json), "actor": r.actor} for r in rows]


def test_rollback_moves_the_alias_back_once_per_alert(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    prompts = _prompt(store, protected=False)
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    monitors.create(
        "rollback", traces=PROD, scorers=["builtin:json_valid"],
        baseline=f"window:{T0}/{T0 + HOUR_MS}", alerts=["psi:output_chars>0.2", "traces<1"],
        actions=[AlertAction("rollback", on="psi:output_chars>0.2")], tests=["psi"],
    )  # fmt: skip
    quiet = monitors.run("rollback", at=at(T0 + HOUR_MS))
    assert quiet.actions == () and prompts.resolve("support", "production").version == 2
    hit = monitors.run("rollback", at=at(T0 + 2 * HOUR_MS))
    assert [a.status for a in hit.actions] == ["applied"]
    action = hit.actions[0]
    assert (action.from_version, action.to_version) == (2, 1)
    assert action.rule == "psi:output_chars>0.2" and action.alert_id in hit.run.alerts
    assert prompts.resolve("support", "production").version == 1
    moves = _audit(store, "prompt_alias.set")
    assert moves[-1]["version"] == 1 and "rollback by monitor 'rollback'" in str(
        moves[-1]["comment"]
    )
    assert moves[-1]["actor"] == "ada"
    events = _audit(store, "monitor.action")
    assert [(e["kind"], e["status"], e["alert_id"]) for e in events] == [
        ("rollback", "applied", action.alert_id)
    ]
    assert monitors.history("rollback")[0].actions == hit.actions
    # Version 1 now serves the alias: its window is empty, the alert stays open, and no second
    # rollback happens while it does.
    record_calls(tracing, start_ms=T0 + 2 * HOUR_MS, answers=BAD, prompt_version="support/2")
    again = monitors.run("rollback", at=at(T0 + 3 * HOUR_MS))
    assert again.run.status == "no_data" and again.actions == ()
    assert len(_audit(store, "monitor.action")) == 1


def test_rollback_of_a_protected_alias_waits_for_approval(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    prompts = _prompt(store, protected=True)
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    monitors.create(
        "guarded", traces=PROD, scorers=["builtin:json_valid"], baseline=BASELINE,
        alerts=["drift_share>0.3"], actions=[AlertAction("rollback")],
    )  # fmt: skip
    hit = monitors.run("guarded", at=at(T0 + 2 * HOUR_MS))
    assert [a.status for a in hit.actions] == ["pending_approval"]
    action = hit.actions[0]
    assert action.request_id is not None and "protected" in action.detail
    assert prompts.resolve("support", "production").version == 2  # nothing moved
    request = prompts.get_request(action.request_id)
    assert request.status == "pending" and request.requested_by == "ada"
    # The policy decides: an approver's decision moves it back, the requester cannot.
    PromptService(store, actor="bea").approve(action.request_id)
    assert prompts.resolve("support", "production").version == 1


def test_rollback_without_an_earlier_version_is_refused(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    ada = PromptService(store, actor="ada")
    ada.create("support", policy=ApprovalPolicy(rules=()))
    ada.register("support", "Answer: {{ question }}")
    ada.register("support", "Answer now: {{ question }}")
    ada.set_alias("support", "production", 2)
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    monitors.create(
        "first", traces=PROD, scorers=["builtin:json_valid"], baseline=BASELINE,
        alerts=["drift_share>0.3"], actions=[AlertAction("rollback")],
    )  # fmt: skip
    hit = monitors.run("first", at=at(T0 + 2 * HOUR_MS))
    assert [a.status for a in hit.actions] == ["refused"]
    assert "held no version before 2" in hit.actions[0].detail
    assert ada.resolve("support", "production").version == 2


def test_reevaluate_runs_an_evaluation_of_the_current_version(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    prompts = _prompt(store, protected=False)
    evaluation = EvaluationService(store, tracking=TrackingService(store))
    evaluation.register_scorer(concise)
    evaluation.create_dataset("support-qa")
    evaluation.upsert_records("support-qa", [{"inputs": {"question": f"q{i}"}} for i in range(5)])
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    with serve_stub(
        "A long and winding answer, variant {n}, that is not concise at all."
    ) as endpoint:
        monitors.create(
            "reeval", traces=PROD, scorers=["concise"], baseline=BASELINE,
            alerts=["score.concise<0.5"],
            actions=[AlertAction("reevaluate", dataset="support-qa", endpoint=endpoint,
                                 model="support-chat")],
        )  # fmt: skip
        hit = monitors.run("reeval", at=at(T0 + 2 * HOUR_MS))
    assert [a.status for a in hit.actions] == ["applied"], hit.actions
    run_id = hit.actions[0].evaluation_run_id
    assert run_id is not None
    stored = evaluation.get_evaluation(run_id)
    assert stored.target == "prompts:/support/2" and stored.rows == 5
    assert stored.aggregates["concise/mean"] == 0.0
    assert stored.name.startswith("monitor re-evaluation: prompts:/support/2")
    assert prompts.resolve("support", "production").version == 2
    # A re-evaluation is never taken as the approved baseline.
    monitors.create("after", traces=PROD, scorers=["concise"])
    after = monitors.run("after", at=at(T0 + HOUR_MS))
    assert after.run.status == "failed" and "has no evaluation run" in (after.run.error or "")


def test_reevaluate_against_a_dead_endpoint_fails_the_action_not_the_pass(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    _prompt(store, protected=False)
    evaluation = EvaluationService(store, tracking=TrackingService(store))
    evaluation.create_dataset("support-qa")
    evaluation.upsert_records("support-qa", [{"inputs": {"question": "q"}}])
    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    monitors.create(
        "dead", traces=PROD, scorers=["builtin:json_valid"], baseline=BASELINE,
        alerts=["drift_share>0.3"],
        actions=[AlertAction("reevaluate", dataset="missing-set", endpoint="http://127.0.0.1:9/v1",
                             model="m")],
    )  # fmt: skip
    hit = monitors.run("dead", at=at(T0 + 2 * HOUR_MS))
    assert hit.run.status == "ok" and [a.status for a in hit.actions] == ["failed"]
    assert "missing-set" in hit.actions[0].detail


# --- refused input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"traces": TraceSelection()}, "needs a selection"),
        ({"traces": "support-chat"}, "must be a TraceSelection"),
        ({"traces": TraceSelection(prompt="support@")}, "NAME, NAME/VERSION or NAME@ALIAS"),
        ({"traces": TraceSelection(gateway_route="a b")}, "gateway_route"),
        ({"scorers": []}, "non-empty list"),
        ({"scorers": ["builtin:nope"]}, "no built-in 'nope'"),
        ({"scorers": ["builtin:max_length:[1]"]}, "JSON object"),
        ({"scorers": ["builtin:max_length:{"]}, "must be a JSON object"),
        ({"scorers": ["../etc/passwd"]}, "registered scorer's NAME"),
        ({"scorers": ["builtin:json_valid", "builtin:json_valid"]}, "twice"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": True}, "sample_rate"),
        ({"baseline": "approved"}, "NAME@ALIAS"),
        ({"baseline": "window:tomorrow/later"}, "neither UTC ms nor an ISO"),
        ({"baseline": "window:10/5"}, "ends before it starts"),
        ({"baseline": "evaluation:xyz"}, "'approved', 'evaluation:RUN_ID'"),
        ({"actions": [AlertAction("rollback")]}, "select the traces by prompt"),
        ({"thresholds": {"nope": 0.1}}, "threshold key"),
        ({"alerts": ["score.x ~ 1"]}, "METRIC OP NUMBER"),
        ({"max_scored_per_pass": 0}, "max_scored_per_pass"),
        ({"window": 60}, "timedelta"),
    ],
)
def test_bad_input_is_refused_naming_the_fix(
    monitors: TraceMonitorService, kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "traces": ROUTE,
        "scorers": ["builtin:json_valid"],
        "baseline": BASELINE,
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidInput, match=message):
        monitors.create("bad", **arguments)  # type: ignore[arg-type]


def test_actions_and_names_refused(store: Store, monitors: TraceMonitorService) -> None:
    with pytest.raises(InvalidInput, match="needs dataset"):
        monitors.create(
            "m", traces=PROD, scorers=["builtin:json_valid"], baseline=BASELINE,
            actions=[AlertAction("reevaluate")],
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="needs the prompt alias"):
        monitors.create(
            "m", traces=TraceSelection(prompt="support"), scorers=["builtin:json_valid"],
            baseline=BASELINE, actions=[AlertAction("rollback")],
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="must be 'reevaluate' or 'rollback'"):
        monitors.create(
            "m", traces=PROD, scorers=["builtin:json_valid"], baseline=BASELINE,
            actions=[AlertAction("delete-everything")],  # type: ignore[arg-type]
        )  # fmt: skip
    with pytest.raises(NotFound, match="not registered"):
        monitors.create("m", traces=ROUTE, scorers=["nobody/3"], baseline=BASELINE)
    with pytest.raises(InvalidInput, match="monitor name"):
        monitors.create("../m", traces=ROUTE, scorers=["builtin:json_valid"], baseline=BASELINE)
    monitors.create("m", traces=ROUTE, scorers=["builtin:json_valid"], baseline=BASELINE)
    with pytest.raises(Exception, match="already exists"):
        monitors.create("m", traces=ROUTE, scorers=["builtin:json_valid"], baseline=BASELINE)
    with pytest.raises(NotFound, match="monitor"):
        monitors.run("ghost")
    monitoring = MonitoringService(store, PredictionService(str(store.settings.home / "log")))
    monitoring.create("model-drift", deployment="churn-api")
    with pytest.raises(InvalidInput, match=r"use client\.monitoring"):
        monitors.get("model-drift")


def test_alerts_fire_the_loops_triggers(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    from loopwright.client import Client
    from loopwright.loop.triggers import events, parse_trigger

    record_calls(tracing, start_ms=T0, answers=GOOD)
    record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    monitors.create(
        "looped", traces=ROUTE, scorers=['builtin:max_length:{"limit": 60}'], baseline=BASELINE,
        alerts=["score.max_length<0.5", "drift_share>0.3"],
    )  # fmt: skip
    monitors.run("looped", at=at(T0 + 2 * HOUR_MS))
    with Client(store.settings) as client:
        performance = events(client, parse_trigger("performance:looped"), cursor=None)
        drift = events(client, parse_trigger("drift:looped"), cursor=None)
        every = events(client, parse_trigger("alert:looped"), cursor=None)
    assert [e.detail.split(" of monitor")[0] for e in performance] == [
        "performance alert score.max_length<0.5"
    ]
    assert [e.detail.split(" of monitor")[0] for e in drift] == ["drift alert drift_share>0.3"]
    assert len(every) == 2


def test_an_llm_judge_scores_online_and_must_be_approved_to_act(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    from loopwright.errors import Conflict
    from loopwright.evaluation import Judge
    from loopwright.store.home import acting_as

    evaluation = EvaluationService(store, tracking=TrackingService(store))
    ids = record_calls(tracing, start_ms=T0, answers=GOOD[:4])
    with serve_stub('{"score": 4, "rationale": "short and right"}') as endpoint:
        judge = Judge("helpful", rubric="Rate {outputs} for {inputs}", model="judge-m",
                      endpoint=endpoint)  # fmt: skip
        with acting_as("ada"):
            version = evaluation.register_scorer(judge)
        acting = [AlertAction("rollback")]
        with pytest.raises(Conflict, match="is not approved"):
            monitors.create("judged", traces=PROD, scorers=["helpful"], actions=acting)
        monitors.create("judged", traces=ROUTE, scorers=["helpful"], baseline=BASELINE)
        run = monitors.run("judged", at=at(T0 + HOUR_MS))
        with acting_as("bea"):
            evaluation.request_approval("helpful", version.version)
        with acting_as("root"):
            evaluation.approve_scorer("helpful", version.version)
        _prompt(store, protected=False)
        approved = monitors.create("acting", traces=PROD, scorers=["helpful"], actions=acting)
        assert approved.scorers == (version.ref,)
    assert run.scoring is not None and run.scoring.scored == 4 and not run.scoring.errors
    (assessment,) = tracing.assessments(ids[0])
    assert (assessment.value, assessment.source_type, assessment.source_id) == (
        4.0, "LLM_JUDGE", version.ref
    )  # fmt: skip
    assert assessment.rationale == "short and right"
    assert run.figures["score.helpful"] == 4.0
    # The judge's model is gone: each new trace gets its error, once, and the pass goes on.
    fresh = record_calls(tracing, start_ms=T0 + 10, answers=GOOD[:2], step_ms=1)
    down = monitors.run("judged", at=at(T0 + HOUR_MS))
    assert down.run.status == "ok" and down.scoring is not None
    assert {e.trace_id for e in down.scoring.errors} == set(fresh)
    assert tracing.assessments(fresh[0])[0].error is not None


def test_selection_by_prompt_name_deployment_and_experiment(
    store: Store, tracing: TracingService, monitors: TraceMonitorService
) -> None:
    from loopwright.tracing.entities import TraceLinks

    experiment = TrackingService(store).create_experiment("chat-bot")
    mine = record_calls(tracing, start_ms=T0, answers=GOOD[:3], prompt_version="my_prompt/1")
    mine += record_calls(tracing, start_ms=T0, answers=GOOD[:2], prompt_version="my_prompt/7")
    record_calls(tracing, start_ms=T0, answers=GOOD[:4], prompt_version="myXprompt/1")  # '_'
    tracing.link(mine[:2], TraceLinks(deployment="chat-api"))
    from dataclasses import replace

    # One trace of the experiment, linked to nothing.
    copied = [replace(s, trace_id="f" * 32) for s in tracing.get(mine[0]).spans]
    tracing.record(copied, experiment_id=experiment.id)
    cases = {
        "by-name": (TraceSelection(prompt="my_prompt"), 5),
        "by-version": (TraceSelection(prompt="my_prompt/7"), 2),
        "by-deployment": (TraceSelection(deployment="chat-api"), 2),
        "by-experiment": (TraceSelection(experiment_ids=(experiment.id,)), 1),
        "both": (TraceSelection(prompt="my_prompt", deployment="chat-api"), 2),
    }
    for name, (selection, expected) in cases.items():
        monitors.create(name, traces=selection, scorers=["builtin:json_valid"], baseline=BASELINE)
        run = monitors.run(name, at=at(T0 + HOUR_MS))
        assert run.run.rows == expected, (name, run.run.rows, run.run.error)
