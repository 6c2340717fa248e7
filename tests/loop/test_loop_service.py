"""LoopService on SQLite and PostgreSQL: loops created, checked and stored with their schedules;
iterations opened one at a time; transitions checked against TRANSITIONS, compare-and-set,
recorded and audited; leases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from _loop_fixtures import DEPLOYMENT, MODEL, PIPELINE, World, gates, world

from loopwright.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopwright.loop.service import LoopService
from loopwright.registry.entities import ApprovalPolicy


@pytest.fixture
def w(tmp_path: Path, db_uri: str) -> Iterator[World]:
    made = world(tmp_path, db_uri, approval=False)
    yield made
    made.client.close()
    made.approver.close()


def _loops(w: World) -> LoopService:
    loops = w.client.loops
    assert isinstance(loops, LoopService)
    return loops


def test_create_get_list_and_defaults(w: World) -> None:
    loops = _loops(w)
    made = loops.create(
        "churn-ct",
        deployment=DEPLOYMENT,
        pipeline=PIPELINE,
        gates=gates(),
        params={"quality": "good", "seed": 3},
        canary_percent=25,
        canary_window=timedelta(minutes=30),
        metric="accuracy",
        margin=0.02,
        min_samples=200,
        require_approval=False,
        cwd="/srv/code",
        description="retrain churn",
    )
    assert made.model == MODEL  # from the deployment's primary
    assert made.gates is not None and made.gates.rules[0].text == "metrics.accuracy >= 0.7"
    assert (made.canary_percent, made.canary_window_ms) == (25.0, 30 * 60_000)
    assert made.params == {"quality": "good", "seed": 3}
    assert made.status == "active" and made.created_by == "loop-bot"
    assert [t.text for t in made.triggers] == ["manual"]
    assert loops.get("churn-ct") == made
    assert [loop.name for loop in loops.list()] == ["churn-ct"]
    with pytest.raises(AlreadyExists, match="churn-ct"):
        loops.create("churn-ct", deployment=DEPLOYMENT, pipeline=PIPELINE)
    events = w.client.audit_events(subject_type="loop", subject_id=made.id)
    assert [e.action for e in events] == ["loop.create"]


def test_triggers_become_schedules_paused_and_deleted_with_the_loop(w: World) -> None:
    loops = _loops(w)
    loops.create(
        "ct", deployment=DEPLOYMENT, pipeline=PIPELINE, require_approval=False,
        triggers=["manual", "interval:6h", "cron:0 3 * * 1"],
    )  # fmt: skip
    schedules = {s.name: s for s in w.client.schedules.list(target="ct")}
    assert sorted(schedules) == ["loop:ct:1", "loop:ct:2"]
    assert {s.trigger.text for s in schedules.values()} == {"interval:6h", "cron:0 3 * * 1"}
    assert all(s.target_kind == "loop" and s.enabled for s in schedules.values())
    assert loops.pause("ct").status == "paused"
    assert not any(s.enabled for s in w.client.schedules.list(target="ct"))
    with pytest.raises(Conflict, match="paused"):
        loops.start_iteration("ct")
    assert loops.resume("ct").status == "active"
    assert all(s.enabled for s in w.client.schedules.list(target="ct"))
    it = loops.start_iteration("ct")
    with pytest.raises(Conflict, match="in flight"):
        loops.delete("ct")
    loops.transition(it.id, expect="triggered", to="failed", reason="test")
    loops.delete("ct")
    assert w.client.schedules.list(target="ct") == []
    with pytest.raises(NotFound, match="loop 'ct' does not exist"):
        loops.get("ct")


def test_a_bad_trigger_creates_nothing(w: World) -> None:
    loops = _loops(w)
    with pytest.raises(InvalidInput):
        loops.create(
            "ct", deployment=DEPLOYMENT, pipeline=PIPELINE, require_approval=False,
            triggers=["interval:6h", "sometimes"],
        )  # fmt: skip
    assert loops.list() == [] and w.client.schedules.list() == []


def test_a_trigger_failing_after_the_first_schedule_rolls_the_loop_back(w: World) -> None:
    # "interval:6h" parses and its schedule is created; the drift trigger's monitor does not
    # exist, so its schedule fails: the loop and the first schedule must go again.
    loops = _loops(w)
    with pytest.raises(NotFound):
        loops.create(
            "ct", deployment=DEPLOYMENT, pipeline=PIPELINE, require_approval=False,
            triggers=["interval:6h", "drift:no-such-monitor"],
        )  # fmt: skip
    assert loops.list() == [] and w.client.schedules.list() == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "-bad", "loop name"),
        ("pipeline", "no_colon", "module:function"),
        ("canary_percent", 0, "canary_percent"),
        ("canary_percent", 100, "canary_percent"),
        ("canary_window", timedelta(0), "canary_window"),
        ("canary_window", 3600, "canary_window"),
        ("margin", -0.1, "margin"),
        ("min_samples", 0, "min_samples"),
        ("max_error_rate", 1.5, "max_error_rate"),
        ("triggers", "manual", "list of trigger"),
        ("triggers", ["manual", "manual"], "repeat"),
        ("params", {"x": float("nan")}, "JSON"),
        (
            "gates",
            {"name": "g", "dataset": "d", "target": "y", "rules": ["metrics.nope >= 1"]},
            "nope",
        ),
    ],
)
def test_bad_settings_are_refused(w: World, field: str, value: object, message: str) -> None:
    arguments: dict[str, object] = {
        "name": "ct",
        "deployment": DEPLOYMENT,
        "pipeline": PIPELINE,
        "require_approval": False,
        field: value,
    }
    name = arguments.pop("name")
    with pytest.raises(InvalidInput, match=message):
        _loops(w).create(name, **arguments)  # type: ignore[arg-type]
    assert _loops(w).list() == []


def test_unknown_deployment_and_approval_without_a_traffic_rule(w: World) -> None:
    loops = _loops(w)
    with pytest.raises(NotFound, match="nope"):
        loops.create("ct", deployment="nope", pipeline=PIPELINE)
    # The policy is empty: asking for approval would ask nobody.
    with pytest.raises(InvalidInput, match="models policy churn --require traffic=1:approver"):
        loops.create("ct", deployment=DEPLOYMENT, pipeline=PIPELINE)
    w.client.registry.set_policy(MODEL, ApprovalPolicy())
    assert loops.create("ct", deployment=DEPLOYMENT, pipeline=PIPELINE).require_approval


def test_iterations_move_only_along_transitions(w: World) -> None:
    loops = _loops(w)
    loops.create("ct", deployment=DEPLOYMENT, pipeline=PIPELINE, require_approval=False)
    first = loops.start_iteration("ct", trigger="drift:m", detail="alert 7")
    assert (first.number, first.state, first.trigger, first.trigger_detail) == (
        1, "triggered", "drift:m", "alert 7",
    )  # fmt: skip
    with pytest.raises(Conflict, match="in flight"):
        loops.start_iteration("ct")
    with pytest.raises(InvalidInput, match="from 'triggered' it may move to: failed, training"):
        loops.transition(first.id, expect="triggered", to="canary")
    with pytest.raises(Conflict, match="in state 'triggered', not 'training'"):
        loops.transition(first.id, expect="training", to="gating")
    moved = loops.transition(first.id, expect="triggered", to="training")
    moved = loops.update(moved.id, expect="training", model_version=1)
    assert moved.model_version == 1 and moved.state == "training"
    with pytest.raises(InvalidInput, match="cannot be set"):
        loops.update(moved.id, expect="training", state="promoted")
    with pytest.raises(Conflict):
        loops.update(moved.id, expect="gating", model_version=2)
    moved = loops.transition(
        moved.id, expect="training", to="gating", model_version=1, comparison={"a": [1, 2]}
    )
    assert moved.comparison == {"a": [1, 2]}
    ended = loops.transition(moved.id, expect="gating", to="rejected", reason="gate failed")
    assert ended.finished_at is not None and ended.reason == "gate failed"
    assert [state for state, _ in ended.history] == ["triggered", "training", "gating", "rejected"]
    with pytest.raises(InvalidInput, match="may move to: none"):
        loops.transition(ended.id, expect="rejected", to="failed")
    second = loops.start_iteration("ct")  # the first one ended: in_flight is free again
    assert second.number == 2
    assert [i.number for i in loops.iterations("ct")] == [2, 1]
    assert [i.number for i in loops.iterations("ct", active=True)] == [2]
    assert [i.number for i in loops.iterations(active=False)] == [1]
    audited = w.client.audit_events(subject_type="loop_iteration", subject_id=first.id)
    assert [e.action for e in audited] == ["loop.iteration.start"] + ["loop.transition"] * 3
    assert (audited[-1].before, audited[-1].after["state"]) == ({"state": "gating"}, "rejected")
    with pytest.raises(NotFound, match="iteration 'nope'"):
        loops.get_iteration("nope")


def test_concurrent_transitions_one_wins(w: World) -> None:
    loops = _loops(w)
    loops.create("ct", deployment=DEPLOYMENT, pipeline=PIPELINE, require_approval=False)
    it = loops.start_iteration("ct")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def move(to: str) -> None:
        barrier.wait()
        try:
            loops.transition(it.id, expect="triggered", to=to)  # type: ignore[arg-type]
            outcomes.append(to)
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=move, args=(to,)) for to in ("training", "failed") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("conflict") == 3
    final = loops.get_iteration(it.id)
    assert final.state in outcomes and len(final.history) == 2


def test_leases(w: World) -> None:
    loops = _loops(w)
    loops.create("ct", deployment=DEPLOYMENT, pipeline=PIPELINE, require_approval=False)
    it = loops.start_iteration("ct")
    taken = loops.lease(it.id, owner="a", ttl=timedelta(minutes=5))
    assert taken is not None and taken.lease_owner == "a"
    assert loops.lease(it.id, owner="b", ttl=timedelta(minutes=5)) is None
    assert loops.lease(it.id, owner="a", ttl=timedelta(minutes=5)) is not None  # renewed
    assert loops.lease(it.id, owner="a", ttl=timedelta(0)) is not None  # given up
    taken = loops.lease(it.id, owner="b", ttl=timedelta(minutes=5))
    assert taken is not None and taken.lease_owner == "b"
    loops.transition(it.id, expect="triggered", to="failed", reason="x")
    assert loops.lease(it.id, owner="b", ttl=timedelta(minutes=5)) is None  # ended
    with pytest.raises(InvalidInput, match="ttl"):
        loops.lease(it.id, owner="b", ttl=timedelta(seconds=-1))
