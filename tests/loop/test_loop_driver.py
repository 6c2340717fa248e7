"""The loop driver on SQLite and PostgreSQL, end to end: the pipeline trains a real version, the
gate evaluates it on the holdout, the registry's traffic rule holds the canary for an approver,
served traffic with late labels decides between promotion and rollback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from _loop_fixtures import (
    DEPLOYMENT,
    HOUR_MS,
    MODEL,
    PIPELINE,
    World,
    connect,
    gates,
    serve,
    world,
)

from loopwright._ids import now_ms
from loopwright.errors import ApprovalNotAllowed, InvalidInput
from loopwright.loop.driver import advance, advance_all, version_of

WINDOW = timedelta(hours=1)


@pytest.fixture
def approving(tmp_path: Path, db_uri: str) -> Iterator[World]:
    made = world(tmp_path, db_uri, approval=True)
    yield made
    made.client.close()
    made.approver.close()


@pytest.fixture
def open_world(tmp_path: Path, db_uri: str) -> Iterator[World]:
    made = world(tmp_path, db_uri, approval=False)
    yield made
    made.client.close()
    made.approver.close()


@pytest.fixture
def t0() -> int:
    """When the canary starts: two hours ago, so served traffic is in the past."""
    return int(now_ms() - 2 * HOUR_MS)


def _create(
    w: World,
    *,
    approval: bool,
    gated: bool = True,
    quality: str = "good",
    metric: str | None = None,
) -> None:
    w.client.loops.create(
        "ct",
        deployment=DEPLOYMENT,
        pipeline=PIPELINE,
        gates=gates() if gated else None,
        params={"quality": quality, "seed": 3},
        canary_percent=10,
        canary_window=WINDOW,
        metric=metric,
        margin=0.05,
        min_samples=500,
        max_compare=timedelta(hours=6),
        require_approval=approval,
        cwd=str(w.code),
    )


def _traffic_requests(w: World, version: int) -> list[str]:
    return [
        r.id
        for r in w.client.registry.requests(status=None, model=MODEL)
        if r.action == "traffic" and r.version == version
    ]


def test_approval_canary_and_promotion(approving: World, t0: int) -> None:
    w = approving
    _create(w, approval=True)
    it = w.client.loops.start_iteration("ct")
    it = advance(w.client, it.id, owner="driver", now_ms=t0)
    assert it.state == "awaiting_approval"
    assert it.model_version == 2 and it.pipeline_run_id is not None
    assert w.client.pipelines.get_run(it.pipeline_run_id).status == "completed"
    gate = w.client.gates.get(it.gate_result_id or "")
    assert gate.passed and (gate.model, gate.version) == (MODEL, 2)
    assert gate.pipeline_run_id == it.pipeline_run_id
    assert _traffic_requests(w, 2) == [it.approval_request_id]
    assert w.client.deployments.get(DEPLOYMENT).revision == 1  # held back
    # Waiting asks nothing twice.
    assert advance(w.client, it.id, owner="driver", now_ms=t0).state == "awaiting_approval"
    assert _traffic_requests(w, 2) == [it.approval_request_id]
    # Separation of duties: the loop's own actor registered the version and asked.
    with pytest.raises(ApprovalNotAllowed, match="separation of duties"):
        w.client.registry.approve(it.approval_request_id or "")
    w.approver.registry.approve(it.approval_request_id or "", "looks fine")
    it = advance(w.client, it.id, owner="driver", now_ms=t0)
    assert it.state == "canary" and it.canary_started_at == t0
    deployment = w.client.deployments.get(DEPLOYMENT)
    assert deployment.strategy == "canary" and it.canary_revision == deployment.revision
    assert [(v.name, v.model_uri, v.weight) for v in deployment.variants] == [
        ("primary", "models:/churn/1", pytest.approx(0.9)),
        ("canary", "models:/churn/2", pytest.approx(0.1)),
    ]
    serve(w.client, variant="primary", version=1, start_ms=t0, seed=11)
    serve(w.client, variant="canary", version=2, start_ms=t0, seed=12)
    half = t0 + HOUR_MS // 2
    assert advance(w.client, it.id, owner="driver", now_ms=half).state == "canary"  # window open
    it = advance(w.client, it.id, owner="driver", now_ms=t0 + HOUR_MS + 1)
    assert it.state == "promoted", it.reason
    assert it.reason is not None and it.reason.startswith("non-inferior: accuracy")
    assert it.comparison is not None and it.comparison["verdict"] == "promote"
    assert it.comparison["candidate"]["n"] == 1000
    final = w.client.deployments.get(DEPLOYMENT)
    assert [(v.name, v.model_uri) for v in final.variants] == [("primary", "models:/churn/2")]
    assert [state for state, _ in it.history] == [
        "triggered", "training", "gating", "awaiting_approval", "canary", "comparing", "promoted",
    ]  # fmt: skip
    assert it.finished_at is not None and it.lease_owner is None
    # An ended iteration is left alone.
    assert advance(w.client, it.id, owner="driver").state == "promoted"


def test_an_approver_rejects(approving: World, t0: int) -> None:
    w = approving
    _create(w, approval=True)
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    w.approver.registry.reject(it.approval_request_id or "", "not before the freeze ends")
    it = advance(w.client, it.id, owner="d", now_ms=t0)
    assert it.state == "rejected"
    assert it.reason is not None and "not before the freeze ends" in it.reason
    assert w.client.deployments.get(DEPLOYMENT).revision == 1
    # The next iteration's pipeline is served from the cache: the same version 2, asked anew
    # (the rejected request of the first iteration is not taken for the new one).
    again = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    assert again.state == "awaiting_approval" and again.model_version == 2
    assert again.approval_request_id not in (None, it.approval_request_id)
    request = w.client.registry.get_request(again.approval_request_id or "")
    assert (request.status, request.version) == ("pending", 2)


def test_a_failing_gate_rejects(open_world: World, t0: int) -> None:
    w = open_world
    _create(w, approval=False, quality="bad")
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    assert it.state == "rejected"
    assert it.reason is not None and "gate 'churn-release' failed" in it.reason
    assert "accuracy" in it.reason
    assert not w.client.gates.get(it.gate_result_id or "").passed
    assert w.client.deployments.get(DEPLOYMENT).revision == 1


def test_a_worse_canary_is_rolled_back(open_world: World, t0: int) -> None:
    w = open_world
    _create(w, approval=False, gated=False, quality="bad")
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    assert it.state == "canary" and it.gate_result_id is None
    serve(w.client, variant="primary", version=1, start_ms=t0, seed=11)
    serve(w.client, variant="canary", version=2, start_ms=t0, seed=12)
    it = advance(w.client, it.id, owner="d", now_ms=t0 + HOUR_MS)
    assert it.state == "rolled_back"
    assert it.reason is not None and it.reason.startswith("significantly worse: accuracy")
    deployment = w.client.deployments.get(DEPLOYMENT)
    assert [(v.name, v.model_uri) for v in deployment.variants] == [("primary", "models:/churn/1")]
    actions = [r.action for r in w.client.deployments.history(DEPLOYMENT)]
    assert actions == ["create", "set-traffic", "rollback"]


def test_an_error_rate_breach_rolls_back_before_the_window_ends(open_world: World, t0: int) -> None:
    w = open_world
    _create(w, approval=False, gated=False)
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    # 2 of 4 requests (50 rows each) fail: 50% of 200 rows, above the 5% limit.
    serve(w.client, variant="canary", version=2, start_ms=t0, rows=200, errors=2, labels=False)
    it = advance(w.client, it.id, owner="d", now_ms=t0 + 60_000)
    assert it.state == "rolled_back"
    assert it.reason is not None and "error rate 50.0% (100 of 200 rows" in it.reason
    assert [v.name for v in w.client.deployments.get(DEPLOYMENT).variants] == ["primary"]


def test_a_few_errors_are_not_a_breach(open_world: World, t0: int) -> None:
    w = open_world
    _create(w, approval=False, gated=False)
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    # 1 request of 10 rows, all 5xx: fewer rows than MIN_ERROR_ROWS.
    serve(w.client, variant="canary", version=2, start_ms=t0, rows=10, errors=1, labels=False)
    assert advance(w.client, it.id, owner="d", now_ms=t0 + 60_000).state == "canary"


def test_no_decision_before_the_deadline_rolls_back_inconclusive(
    open_world: World, t0: int
) -> None:
    w = open_world
    _create(w, approval=False, gated=False, metric="accuracy")
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    # Served but not labelled: accuracy cannot be computed yet.
    serve(w.client, variant="primary", version=1, start_ms=t0, seed=11, labels=False)
    serve(w.client, variant="canary", version=2, start_ms=t0, seed=12, labels=False)
    it = advance(w.client, it.id, owner="d", now_ms=t0 + HOUR_MS)
    assert it.state == "comparing"
    assert it.comparison is not None and "labels" in it.comparison["waiting"]
    it = advance(w.client, it.id, owner="d", now_ms=t0 + 8 * HOUR_MS)
    assert it.state == "rolled_back"
    assert it.reason is not None and it.reason.startswith("inconclusive")
    assert [v.name for v in w.client.deployments.get(DEPLOYMENT).variants] == ["primary"]


def test_an_unexpected_error_fails_the_iteration(open_world: World) -> None:
    w = open_world
    w.client.loops.create(
        "ct", deployment=DEPLOYMENT, pipeline="missing_module:train", require_approval=False,
        cwd=str(w.code),
    )  # fmt: skip
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d")
    assert it.state == "failed"
    assert it.reason is not None and "missing_module" in it.reason
    assert advance(w.client, it.id, owner="d").state == "failed"  # not retried
    assert w.client.loops.start_iteration("ct").number == 2  # a new trigger starts anew


def test_a_leased_iteration_is_left_to_its_driver(open_world: World, t0: int) -> None:
    w = open_world
    _create(w, approval=False, gated=False)
    it = w.client.loops.start_iteration("ct")
    assert w.client.loops.lease(it.id, owner="other", ttl=timedelta(minutes=5)) is not None
    assert advance(w.client, it.id, owner="me", now_ms=t0).state == "triggered"


def test_concurrent_drivers_do_not_both_act(open_world: World, t0: int) -> None:
    w = open_world
    _create(w, approval=False, gated=False)
    it = w.client.loops.start_iteration("ct")
    clients = [connect(w.db_uri, w.home, "loop-bot") for _ in range(3)]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def drive(n: int) -> None:
        barrier.wait()
        try:
            advance(clients[n], it.id, owner=f"driver-{n}", now_ms=t0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert errors == []
    final = w.client.loops.get_iteration(it.id)
    assert [state for state, _ in final.history] == ["triggered", "training", "gating", "canary"]
    assert len(w.client.pipelines.list_runs()) == 1
    actions = [r.action for r in w.client.deployments.history(DEPLOYMENT)]
    assert actions == ["create", "set-traffic"]


def test_advance_all_moves_every_loop(open_world: World, t0: int) -> None:
    w = open_world
    _create(w, approval=False, gated=False)
    w.client.loops.create(
        "other", deployment=DEPLOYMENT, pipeline="missing_module:train", require_approval=False
    )
    w.client.loops.start_iteration("ct")
    w.client.loops.start_iteration("other")
    moved = advance_all(w.client, owner="tick", now_ms=t0)
    assert sorted((it.loop, it.state) for it in moved) == [("ct", "canary"), ("other", "failed")]
    assert [it.loop for it in w.client.loops.iterations(active=True)] == ["ct"]


@pytest.mark.parametrize(
    ("result", "version"),
    [("models:/churn/4", 4), ({"name": "churn", "version": "5"}, 5), (6, 6)],
)
def test_version_of_reads_what_a_pipeline_returns(result: object, version: int) -> None:
    assert version_of(result, "churn") == version


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("models:/other/4", "model 'other'"),
        ("models:/churn@champion", "names no version"),
        (None, "names no version"),
        (True, "names no version"),
        (0, "names no version"),
    ],
)
def test_version_of_refuses_what_names_no_version(result: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        version_of(result, "churn")


def test_a_loops_schedule_starts_and_moves_an_iteration(open_world: World) -> None:
    from loopwright.loop.scheduler import Scheduler

    w = open_world
    w.client.loops.create(
        "ct", deployment=DEPLOYMENT, pipeline=PIPELINE, triggers=["interval:1h"],
        params={"seed": 3}, require_approval=False, cwd=str(w.code),
    )  # fmt: skip
    (schedule,) = w.client.schedules.list(target="ct")
    assert schedule.next_fire_at is not None
    scheduler = Scheduler(w.client, owner="sched")
    (fire,) = scheduler.tick(now_ms=schedule.next_fire_at)
    (it,) = w.client.loops.iterations("ct")
    assert fire.iteration_id == it.id and it.trigger == "interval:1h"
    assert it.state == "canary"  # the scheduler's tick advanced it
    assert scheduler.tick(now_ms=schedule.next_fire_at) == []  # that slot fired already
