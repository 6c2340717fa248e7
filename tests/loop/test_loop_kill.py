"""Kill-and-resume in every state, on SQLite and PostgreSQL: a driver process SIGKILLs itself at
a failpoint (entering a state, or between a side effect and the write recording it), then a
fresh driver finishes the iteration: the same outcome, and nothing done twice (one completed
pipeline run, one gate result, one approval request, one canary, one promotion or rollback)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from _loop_fixtures import DEPLOYMENT, HOUR_MS, MODEL, PIPELINE, World, gates, serve, world

from loopwright._ids import now_ms
from loopwright.loop._faults import ENVIRONMENT
from loopwright.loop.driver import advance
from loopwright.loop.entities import Iteration

LEASE_S = 1.0
# The driver process imports loopwright afresh from the working tree: a module being edited at
# that moment (a shared tree) fails its training, and the tick's iteration ends failed with the
# ImportError or NameError as its reason (the one failure seen in 32 runs of the canary test,
# 22 of them beside two busy loops). The lease and the failpoints themselves did not fail.
CHILD = """
import sys
from datetime import timedelta

import loopwright as lw
from loopwright.loop.driver import advance

db_uri, home, iteration_id, now, lease = sys.argv[1:6]
with lw.connect(db_uri, home=home, user="loop-bot") as client:
    ttl = timedelta(seconds=float(lease))
    advance(client, iteration_id, owner="doomed", now_ms=int(now), lease=ttl)
"""


@dataclass
class Driver:
    """Ticks through a driver process armed with ``failpoint`` until it fires once; from then
    on a fresh driver (another owner, in this process) carries on."""

    w: World
    failpoint: str
    fired: bool = False

    def tick(self, iteration_id: str, now: int) -> Iteration:
        if not self.fired:
            child = subprocess.run(
                [sys.executable, "-c", CHILD, self.w.db_uri, str(self.w.home), iteration_id,
                 str(now), str(LEASE_S)],
                env={**os.environ, ENVIRONMENT: self.failpoint},
                capture_output=True,
                text=True,
                timeout=300,
            )  # fmt: skip
            if child.returncode == 0:
                iteration: Iteration = self.w.client.loops.get_iteration(iteration_id)
                return iteration
            assert child.returncode == -9, child.stderr[-3000:]
            self.fired = True
            time.sleep(LEASE_S + 0.2)  # the dead driver's lease lapses
        return advance(self.w.client, iteration_id, owner="fresh", now_ms=now)


@pytest.fixture
def t0() -> int:
    return int(now_ms() - 2 * HOUR_MS)


def _world(tmp_path: Path, db_uri: str, *, approval: bool) -> Iterator[World]:
    made = world(tmp_path, db_uri, approval=approval)
    yield made
    made.client.close()
    made.approver.close()


@pytest.fixture
def approving(tmp_path: Path, db_uri: str) -> Iterator[World]:
    yield from _world(tmp_path, db_uri, approval=True)


@pytest.fixture
def open_world(tmp_path: Path, db_uri: str) -> Iterator[World]:
    yield from _world(tmp_path, db_uri, approval=False)


def _create(w: World, *, approval: bool, quality: str = "good") -> str:
    w.client.loops.create(
        "ct",
        deployment=DEPLOYMENT,
        pipeline=PIPELINE,
        gates=gates() if approval else None,
        params={"quality": quality, "seed": 3},
        canary_window=timedelta(hours=1),
        margin=0.05,
        min_samples=500,
        require_approval=approval,
        cwd=str(w.code),
    )
    return str(w.client.loops.start_iteration("ct").id)


def _deployment_actions(w: World) -> list[str]:
    return [revision.action for revision in w.client.deployments.history(DEPLOYMENT)]


def _once_each(w: World, it: Iteration) -> None:
    """One completed pipeline run and one registered version of it."""
    runs = w.client.pipelines.list_runs()
    assert [r.status for r in runs].count("completed") == 1
    assert {r.status for r in runs} <= {"completed", "killed"}
    assert it.pipeline_run_id in {r.id for r in runs if r.status == "completed"}
    assert [v.version for v in w.client.registry.list_versions(MODEL)] == [1, 2]


@pytest.mark.parametrize(
    "failpoint",
    [
        "loop.triggered.begin",
        "loop.training.begin",
        "loop.training.started",
        "loop.training.finished",
        "loop.gating.begin",
        "loop.gating.recorded",
        "loop.awaiting_approval.begin",
        "loop.approval.requested",
        "loop.canary.applied",
        "loop.canary.begin",
        "loop.comparing.begin",
        "loop.compare.promoted",
    ],
)
def test_killed_on_the_way_to_promotion(approving: World, t0: int, failpoint: str) -> None:
    w = approving
    driver = Driver(w, failpoint)
    iteration_id = _create(w, approval=True)
    it = driver.tick(iteration_id, t0)
    assert it.state == "awaiting_approval", it.reason
    assert it.approval_request_id is not None
    w.approver.registry.approve(it.approval_request_id, "ok")
    it = driver.tick(iteration_id, t0)
    assert it.state == "canary", it.reason
    serve(w.client, variant="primary", version=1, start_ms=t0, seed=11)
    serve(w.client, variant="canary", version=2, start_ms=t0, seed=12)
    it = driver.tick(iteration_id, t0 + HOUR_MS + 1)
    assert driver.fired
    assert it.state == "promoted", it.reason
    _once_each(w, it)
    assert len(w.client.gates.results(model=MODEL, version=2)) == 1
    traffic = [r for r in w.client.registry.requests(status=None, model=MODEL) if r.version == 2]
    assert [(r.action, r.status) for r in traffic] == [("traffic", "approved")]
    assert _deployment_actions(w) == ["create", "set-traffic", "promote"]
    assert [v.model_uri for v in w.client.deployments.get(DEPLOYMENT).variants] == [
        "models:/churn/2"
    ]
    states = [state for state, _ in it.history]
    assert states == [
        "triggered", "training", "gating", "awaiting_approval", "canary", "comparing", "promoted",
    ]  # fmt: skip


@pytest.mark.parametrize("failpoint", ["loop.canary.applied", "loop.compare.rolled_back"])
def test_killed_on_the_way_to_a_rollback(open_world: World, t0: int, failpoint: str) -> None:
    w = open_world
    driver = Driver(w, failpoint)
    iteration_id = _create(w, approval=False, quality="bad")
    it = driver.tick(iteration_id, t0)
    assert it.state == "canary", it.reason
    serve(w.client, variant="primary", version=1, start_ms=t0, seed=11)
    serve(w.client, variant="canary", version=2, start_ms=t0, seed=12)
    it = driver.tick(iteration_id, t0 + HOUR_MS + 1)
    assert driver.fired
    assert it.state == "rolled_back" and (it.reason or "").startswith("significantly worse")
    _once_each(w, it)
    assert _deployment_actions(w) == ["create", "set-traffic", "rollback"]


def test_killed_rolling_back_an_erring_canary(open_world: World, t0: int) -> None:
    w = open_world
    driver = Driver(w, "loop.canary.rolled_back")
    iteration_id = _create(w, approval=False)
    it = driver.tick(iteration_id, t0)
    assert it.state == "canary", it.reason
    serve(w.client, variant="canary", version=2, start_ms=t0, rows=200, errors=2, labels=False)
    it = driver.tick(iteration_id, t0 + 60_000)
    assert driver.fired
    assert it.state == "rolled_back" and "error rate" in (it.reason or "")
    assert _deployment_actions(w) == ["create", "set-traffic", "rollback"]


DYING_PIPELINE = '''
"""The loop's pipeline whose training step dies once after registering (the kill tests)."""

import os
import signal
from pathlib import Path

from ct_pipeline import frame

import loopwright as lw
from loopwright.pipelines import pipeline, step


@step
def train_once(marker: str) -> int:
    from sklearn.linear_model import LogisticRegression

    data = frame(500, 3)
    model = LogisticRegression(max_iter=1000).fit(data[["age", "income"]], data["churned"])
    info = lw.active_run().log_model(
        model, "model", registered_model_name="churn", input_example=data[["age", "income"]].head(5)
    )
    if not Path(marker).exists():  # the first attempt dies registered, before the step ends
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return info.registered_version.version


@pipeline
def churn_once(marker: str) -> str:
    return f"models:/churn/{train_once(marker)}"
'''


def test_killed_inside_a_step_after_it_registered(
    open_world: World, t0: int, tmp_path: Path
) -> None:
    """The resumed pipeline re-runs the step, which registers again: the loop takes the version
    the completed run returns (3); the dead attempt's version 2 stays in the registry, unused."""
    w = open_world
    (w.code / "ct_dying.py").write_text(DYING_PIPELINE)
    w.client.loops.create(
        "ct", deployment=DEPLOYMENT, pipeline="ct_dying:churn_once",
        params={"marker": str(tmp_path / "died")}, require_approval=False, cwd=str(w.code),
    )  # fmt: skip
    iteration_id = w.client.loops.start_iteration("ct").id
    driver = Driver(w, "none.armed")  # the step kills the driver process itself
    it = driver.tick(iteration_id, t0)
    assert driver.fired and (tmp_path / "died").exists()
    assert it.state == "canary", it.reason
    assert [v.version for v in w.client.registry.list_versions(MODEL)] == [1, 2, 3]
    assert it.model_version == 3
    runs = {r.id: r for r in w.client.pipelines.list_runs()}
    assert sorted(r.status for r in runs.values()) == ["completed", "killed"]
    assert runs[it.pipeline_run_id or ""].status == "completed"
    canary = w.client.deployments.get(DEPLOYMENT).variant("canary")
    assert canary is not None and canary.model_uri == "models:/churn/3"
