"""One pass of a trace monitor at a time (review R2): two passes of the same monitor at once
would both read "not scored" and both call the scorers (a judge paid twice) and write twice.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _trace_monitor_world import GOOD, HOUR_MS, T0, record_calls

import loopwright as lw
from loopwright.config import resolve_settings
from loopwright.errors import Conflict
from loopwright.evaluation.service import EvaluationService
from loopwright.governance.users import UserService
from loopwright.monitoring.llm_claim import CLAIM_KEY, CLAIM_S
from loopwright.monitoring.llm_entities import TraceSelection
from loopwright.monitoring.llm_service import TraceMonitorService
from loopwright.monitoring.service import MonitoringService
from loopwright.serving.predictions import PredictionService
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store
from loopwright.tracing.service import TracingService
from loopwright.tracking.service import TrackingService

CALLS: list[str] = []
FIRST_CALL = threading.Event()
GO_ON = threading.Event()


@lw.scorer
def slow_judge(*, outputs: Any) -> float:
    """Stands for a paid judge: counts its calls; the first waits until the test lets it go."""
    CALLS.append(str(outputs))
    if len(CALLS) == 1:
        FIRST_CALL.set()
        GO_ON.wait(10)
    time.sleep(0.005)
    return 1.0


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ada")
    with open_store(settings) as s:
        UserService(s, actor="root").add("root", "admin")
        UserService(s, actor="root").add("ada", "editor")
        yield s


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _spec(store: Store) -> dict[str, Any]:
    with store.db.read() as conn:
        text = conn.execute(
            sa.select(t.monitors.c.spec_json).where(t.monitors.c.name == "paid")
        ).scalar_one()
    return dict(json.loads(text))


def test_two_passes_at_once_score_each_trace_once(store: Store) -> None:
    CALLS.clear()
    FIRST_CALL.clear()
    GO_ON.clear()
    tracing = TracingService(store)
    EvaluationService(store, tracking=TrackingService(store)).register_scorer(slow_judge)
    record_calls(tracing, start_ms=T0 - HOUR_MS, answers=GOOD[:3])
    ids = record_calls(tracing, start_ms=T0, answers=GOOD[:20])
    monitors = TraceMonitorService(store, actor="ada")
    monitors.create(
        "paid", traces=TraceSelection(gateway_route="support-chat"), scorers=["slow_judge"],
        baseline=f"window:{T0 - HOUR_MS}/{T0}",
    )  # fmt: skip
    end = _at(T0 + HOUR_MS)
    outcomes: dict[str, Any] = {}

    def run(who: str) -> None:
        try:
            outcomes[who] = monitors.run("paid", at=end)
        except Conflict as exc:
            outcomes[who] = exc

    first = threading.Thread(target=run, args=("first",))
    first.start()
    try:
        assert FIRST_CALL.wait(10)  # the first pass is inside its scorer
        # Two more passes race while it scores: both are refused, nothing scored nor stored.
        racers = [threading.Thread(target=run, args=(f"racer{i}",)) for i in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(10)
    finally:
        GO_ON.set()
        first.join(20)
    for who in ("racer0", "racer1"):
        refused = outcomes[who]
        assert isinstance(refused, Conflict), refused
        assert "monitor 'paid' has a pass running since" in str(refused)
        assert "wait for it to finish" in str(refused)
    done = outcomes["first"]
    assert done.run.status == "ok" and done.scoring is not None
    assert done.scoring.scored == 20 and done.scoring.assessments == 23  # window + baseline
    assert len(CALLS) == 23  # each trace scored once: 20 of the window, 3 of the baseline
    for trace_id in ids:
        assert len(tracing.assessments(trace_id)) == 1
    assert len(monitors.history("paid")) == 1  # the refused passes stored no run
    assert CLAIM_KEY not in _spec(store)  # released
    again = monitors.run("paid", at=end)  # a later pass runs and has nothing left to score
    assert again.scoring is not None and again.scoring.scored == 0 and len(CALLS) == 23


def test_a_dead_pass_claim_lapses_and_the_scheduler_skips_a_claimed_monitor(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    now = [T0 + HOUR_MS]
    monitors = TraceMonitorService(store, actor="ada", clock=lambda: now[0])
    monitors.create(
        "paid", traces=TraceSelection(gateway_route="support-chat"),
        scorers=["builtin:json_valid"], baseline="window:0/1000", every=timedelta(minutes=5),
    )  # fmt: skip
    # A pass whose process died left its claim behind.
    spec = _spec(store)
    spec[CLAIM_KEY] = {"token": "dead", "since": now[0], "until": now[0] + CLAIM_S * 1000}
    with store.db.write() as conn:
        conn.execute(
            t.monitors.update()
            .where(t.monitors.c.name == "paid")
            .values(spec_json=json.dumps(spec))
        )
    with pytest.raises(Conflict, match="the claim lapses at"):
        monitors.run("paid")
    # The scheduler skips it (logged, not raised) and stores nothing.
    predictions = PredictionService(str(store.settings.home / "log"))
    scheduler = MonitoringService(store, predictions, actor="ada", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="loopwright.monitoring.service"):
        assert scheduler.run_due() == [] and monitors.history("paid") == []
    assert [r.levelname for r in caplog.records] == ["INFO"]  # a skip, not an error
    assert "scheduled run skipped: monitor 'paid' has a pass running" in caplog.text
    now[0] += CLAIM_S * 1000 + 1
    assert monitors.run("paid").run.status == "no_data"
    assert CLAIM_KEY not in _spec(store)
    assert monitors.get("paid").scorers == ("builtin:json_valid",)  # the spec is intact
