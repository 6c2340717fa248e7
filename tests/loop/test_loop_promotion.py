"""The loop's promotion and comparison defaults, on SQLite and PostgreSQL.

A deployment whose primary follows ``@champion`` under the default-style policy (``alias:champion``
and ``traffic`` each need an approver): the promote verdict opens an alias request, the iteration
records it and waits in ``comparing`` (``loops show``/``history`` say so), and then promotes once
it is approved, or rolls back with the approver's comment once rejected. And a loop without a
metric never decides on the label-free mean prediction: it waits for labels, then the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _loop_fixtures import DEPLOYMENT, HOUR_MS, MODEL, PIPELINE, World, gates, serve, world
from typer.testing import CliRunner

from loopwright._ids import now_ms
from loopwright.cli.app import app
from loopwright.loop.driver import advance
from loopwright.loop.entities import Iteration
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.serving.entities import Variant

CHAMPION = f"models:/{MODEL}@champion"


@pytest.fixture
def t0() -> int:
    return int(now_ms() - 2 * HOUR_MS)


@pytest.fixture
def champion(tmp_path: Path, db_uri: str) -> Iterator[World]:
    """The loop world with the primary following ``@champion`` (at version 1) and a policy
    protecting that alias and live traffic."""
    w = world(tmp_path, db_uri, approval=True)
    policy = ApprovalPolicy((ApprovalRule("alias:champion"), ApprovalRule("traffic")))
    w.client.registry.set_policy(MODEL, policy)
    change = w.client.registry.set_alias(MODEL, "champion", 1)
    assert change.request is not None
    w.approver.registry.approve(change.request.id, "v1 is the champion")
    w.client.deployments.set_traffic(DEPLOYMENT, [Variant("primary", CHAMPION, 1.0)])
    yield w
    w.client.close()
    w.approver.close()


def _to_comparison(w: World, t0: int, *, expires_after_s: int | None = None) -> Iteration:
    """Create the loop, approve its canary, serve both variants with labels and tick past the
    window: the promote verdict, refused by the registry (the alias request expiring after
    ``expires_after_s``, if given)."""
    w.client.loops.create(
        "ct", deployment=DEPLOYMENT, pipeline=PIPELINE, gates=gates(),
        params={"quality": "good", "seed": 3}, canary_window=timedelta(hours=1), margin=0.05,
        min_samples=500, cwd=str(w.code),
    )  # fmt: skip
    it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
    assert it.state == "awaiting_approval", it.reason
    w.approver.registry.approve(it.approval_request_id or "", "canary it")
    it = advance(w.client, it.id, owner="d", now_ms=t0)
    assert it.state == "canary", it.reason
    serve(w.client, variant="primary", version=1, start_ms=t0, seed=11)
    serve(w.client, variant="canary", version=2, start_ms=t0, seed=12)
    if expires_after_s is not None:
        policy = w.client.registry.get_model(MODEL).policy
        w.client.registry.set_policy(MODEL, replace(policy, expires_after_s=expires_after_s))
    it = advance(w.client, it.id, owner="d", now_ms=t0 + HOUR_MS + 1)
    assert it.state == "comparing", it.reason
    return it


def _alias_requests(w: World) -> list[Any]:
    """The requests to move an alias to version 2 (the candidate)."""
    requests = w.client.registry.requests(status=None, model=MODEL)
    return [r for r in requests if r.action == "alias" and r.version == 2]


def _cli(w: World, *args: str) -> str:
    options = ["--home", str(w.home), "--db-uri", w.db_uri, "--user", "loop-bot"]
    result = CliRunner().invoke(app, [*options, *args], env={"COLUMNS": "400"})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return str(result.stdout)


def test_promotion_waits_for_the_alias_approval_then_promotes(champion: World, t0: int) -> None:
    w = champion
    it = _to_comparison(w, t0)
    (request,) = _alias_requests(w)
    assert (request.status, request.target, request.version) == ("pending", "champion", 2)
    comparison = dict(it.comparison or {})
    assert comparison["verdict"] == "promote"
    assert comparison["waiting_for"] == request.id and comparison["waiting_alias"] == "champion"
    assert request.id in comparison["refusal"] and "approval" in comparison["refusal"]
    waits = f"promotion waits for approval request {request.id} (alias champion -> version 2)"
    assert waits in _cli(w, "loops", "show", "ct")
    assert waits in _cli(w, "loops", "history", "ct")
    # Waiting opens nothing more and keeps the verdict.
    again = advance(w.client, it.id, owner="d", now_ms=t0 + 2 * HOUR_MS)
    assert again.state == "comparing" and again.comparison == it.comparison
    assert len(_alias_requests(w)) == 1
    w.approver.registry.approve(request.id, "promote it")
    it = advance(w.client, it.id, owner="d", now_ms=t0 + 2 * HOUR_MS)
    assert it.state == "promoted", it.reason
    assert it.reason is not None and it.reason.startswith("non-inferior: accuracy")
    final = w.client.deployments.get(DEPLOYMENT)
    assert [(v.name, v.model_uri) for v in final.variants] == [("primary", CHAMPION)]
    assert final.strategy != "canary"
    assert w.client.registry.resolve(MODEL, "@champion").version == 2
    assert [r.status for r in _alias_requests(w)] == ["approved"]
    assert "promotion waits" not in _cli(w, "loops", "show", "ct")


def test_a_rejected_promotion_rolls_back_with_the_comment(champion: World, t0: int) -> None:
    w = champion
    it = _to_comparison(w, t0)
    (request,) = _alias_requests(w)
    w.approver.registry.reject(request.id, "not during the sale")
    it = advance(w.client, it.id, owner="d", now_ms=t0 + 2 * HOUR_MS)
    assert it.state == "rolled_back"
    assert it.reason == (
        f"promotion refused: approval request {request.id} (alias champion -> version 2) "
        "rejected by ada: not during the sale"
    )
    final = w.client.deployments.get(DEPLOYMENT)
    assert [(v.name, v.model_uri) for v in final.variants] == [("primary", CHAMPION)]
    assert w.client.registry.resolve(MODEL, "@champion").version == 1
    assert [r.status for r in _alias_requests(w)] == ["rejected"]  # none opened anew


def test_an_expired_promotion_request_rolls_back(champion: World, t0: int) -> None:
    w = champion
    it = _to_comparison(w, t0, expires_after_s=1)
    (request,) = _alias_requests(w)
    time.sleep(1.1)  # the request's own expiry, in the registry's (wall) clock
    it = advance(w.client, it.id, owner="d", now_ms=t0 + 2 * HOUR_MS)
    assert it.state == "rolled_back"
    assert it.reason == (
        f"promotion refused: approval request {request.id} (alias champion -> version 2) expired"
    )
    assert [(v.name, v.model_uri) for v in w.client.deployments.get(DEPLOYMENT).variants] == [
        ("primary", CHAMPION)
    ]


def test_without_a_metric_the_loop_compares_accuracy_not_the_mean_prediction(
    tmp_path: Path, db_uri: str, t0: int
) -> None:
    w = world(tmp_path, db_uri, approval=False)
    try:
        w.client.loops.create(
            "ct", deployment=DEPLOYMENT, pipeline=PIPELINE, params={"quality": "good", "seed": 3},
            canary_window=timedelta(hours=1), margin=0.05, min_samples=500,
            max_compare=timedelta(hours=6), require_approval=False, cwd=str(w.code),
        )  # fmt: skip
        assert w.client.loops.get("ct").metric is None
        it = advance(w.client, w.client.loops.start_iteration("ct").id, owner="d", now_ms=t0)
        assert it.state == "canary", it.reason
        # Served, unlabelled: the mean prediction could be compared, accuracy cannot yet.
        serve(w.client, variant="primary", version=1, start_ms=t0, seed=11, labels=False)
        serve(w.client, variant="canary", version=2, start_ms=t0, seed=12, labels=False)
        it = advance(w.client, it.id, owner="d", now_ms=t0 + HOUR_MS + 1)
        assert it.state == "comparing"
        assert it.comparison is not None and it.comparison["verdict"] is None
        assert "accuracy" in it.comparison["waiting"] and "labels" in it.comparison["waiting"]
        it = advance(w.client, it.id, owner="d", now_ms=t0 + 8 * HOUR_MS)
        assert it.state == "rolled_back"
        assert it.reason is not None and it.reason.startswith("inconclusive")
        assert "accuracy (default)" in _cli(w, "loops", "show", "ct")
    finally:
        w.client.close()
        w.approver.close()
