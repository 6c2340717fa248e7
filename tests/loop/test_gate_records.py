"""Gate results on the store (SQLite and PostgreSQL) and over a real server: the row, the
version tag and the ``gate.check`` audit event land together or not at all; reading filters by
model and version; a remote client records and reads the same results as an embedded one, an
editor records, a viewer only reads; bad bodies are refused naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _gate_fixtures import MODEL, populate, spec

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound, PermissionDenied
from loopwright.loop._gate_records import GateService, reason_of
from loopwright.loop.entities import RuleOutcome
from loopwright.loop.gates import evaluate_gate, load_gate_spec
from test_public_api import _add_users, live_server

pytest.importorskip("sklearn")

GATE = load_gate_spec(spec("metrics.auc >= 0.85", "latency.p95_ms <= 20"))
PASS = (
    RuleOutcome("metrics.auc >= 0.85", 0.91, True),
    RuleOutcome("latency.p95_ms <= 20", 3, True),
)
FAIL = (
    RuleOutcome("metrics.auc >= 0.85", 0.7, False),
    RuleOutcome("latency.p95_ms <= 20", None, False, "the model failed"),
)


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user="ada"
    )
    with Client(settings) as client:
        yield client


def _gate_events(client: Client) -> list[str]:
    return [e.subject_id for e in client.audit.events() if e.action == "gate.check"]


def test_record_stores_the_row_the_tag_and_the_audit_event(client: Client) -> None:
    holdout = populate(client, only=2)
    gates = GateService(client.store, actor="ci-bot")
    passed = gates.record(GATE, model=MODEL, version=1, dataset_version_id=holdout, outcomes=PASS)
    assert passed.passed and passed.reason == "" and passed.created_by == "ci-bot"
    assert passed.outcomes == PASS and passed.dataset == "churn-holdout@v1"
    failed = gates.record(
        GATE,
        model=MODEL,
        version=2,
        dataset_version_id=holdout,
        outcomes=FAIL,
        champion_version=1,
    )
    assert not failed.passed and failed.champion_version == 1
    assert failed.reason == (
        "metrics.auc >= 0.85 failed (0.7); latency.p95_ms <= 20 failed (not measured: "
        "the model failed)"
    )
    assert failed.reason == reason_of(FAIL)
    tags = client.registry.get_version(MODEL, 2).tags
    assert tags["loopwright.gate.churn-release"] == "failed"
    assert _gate_events(client) == [passed.id, failed.id]
    event = next(e for e in client.audit.events() if e.subject_id == failed.id)
    assert (event.actor, event.subject_type) == ("ci-bot", "gate_result")
    assert client.verify_audit().ok

    # a later check of the same gate moves the version's verdict
    again = gates.record(GATE, model=MODEL, version=2, dataset_version_id=holdout, outcomes=PASS)
    assert client.registry.get_version(MODEL, 2).tags["loopwright.gate.churn-release"] == "passed"
    assert [r.id for r in gates.results(model=MODEL, version=2)] == [again.id, failed.id]
    assert [r.id for r in gates.results(limit=2)] == [again.id, failed.id]
    assert gates.get(passed.id) == passed


def test_a_refused_record_leaves_no_row_tag_or_event(client: Client) -> None:
    holdout = populate(client, only=1)
    gates = GateService(client.store)
    with pytest.raises(NotFound, match="registered model 'nope' does not exist"):
        gates.record(GATE, model="nope", version=1, dataset_version_id=holdout, outcomes=PASS)
    with pytest.raises(NotFound, match="registered model 'churn' has no version 7"):
        gates.record(GATE, model=MODEL, version=7, dataset_version_id=holdout, outcomes=PASS)
    with pytest.raises(NotFound, match="dataset version 'f00' does not exist"):
        gates.record(GATE, model=MODEL, version=1, dataset_version_id="f00", outcomes=PASS)
    with pytest.raises(NotFound, match="pipeline run 'p1' does not exist"):
        gates.record(
            GATE,
            model=MODEL,
            version=1,
            dataset_version_id=holdout,
            outcomes=PASS,
            pipeline_run_id="p1",
        )
    with pytest.raises(InvalidInput, match="spec must be a GateSpec"):
        gates.record(
            GATE.to_dict(),  # type: ignore[arg-type]
            model=MODEL,
            version=1,
            dataset_version_id=holdout,
            outcomes=PASS,
        )
    with pytest.raises(InvalidInput, match="needs at least one rule outcome"):
        gates.record(GATE, model=MODEL, version=1, dataset_version_id=holdout, outcomes=())
    with pytest.raises(InvalidInput, match="cannot pass with the value nan"):
        bad = (RuleOutcome("metrics.auc >= 0.85", float("nan"), True),)
        gates.record(GATE, model=MODEL, version=1, dataset_version_id=holdout, outcomes=bad)
    assert gates.results() == [] and _gate_events(client) == []
    assert "loopwright.gate.churn-release" not in client.registry.get_version(MODEL, 1).tags


def test_reading_refuses_bad_arguments(client: Client) -> None:
    gates = GateService(client.store)
    with pytest.raises(NotFound, match="gate result 'abc' does not exist"):
        gates.get("abc")
    with pytest.raises(NotFound, match="registered model 'ghost' does not exist"):
        gates.results(model="ghost")
    with pytest.raises(InvalidInput, match="needs model=NAME too"):
        gates.results(version=1)
    with pytest.raises(InvalidInput, match="limit 0 must be 1-1000"):
        gates.results(limit=0)


# --- over a server ------------------------------------------------------------------------------


def test_remote_records_and_reads_as_embedded(tmp_path: Path, db_uri: str) -> None:
    settings = resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs")
    )
    tokens = _add_users(settings)
    gate = load_gate_spec(spec("metrics.auc >= 0.85", "vs_champion.auc >= 0"))
    with (
        live_server(settings) as url,
        lw.connect(url, token=tokens["ada"], home=tmp_path / "ada") as ada,
        lw.connect(url, token=tokens["vic"], home=tmp_path / "vic") as vic,
        Client(resolve_settings(**_local(settings), user="root")) as local,
    ):
        populate(ada, only=2)
        good = evaluate_gate(gate, f"models:/{MODEL}/1", client=ada)
        worse = evaluate_gate(gate, f"models:/{MODEL}/2", client=ada)
        assert good.passed and not worse.passed and good.created_by == "ada"
        assert worse.outcomes[1].detail.startswith("no champion yet")
        assert local.gates.results(model=MODEL) == vic.gates.results(model=MODEL)
        assert vic.gates.results(model=MODEL, version=1) == [good]
        assert vic.gates.get(worse.id) == local.gates.get(worse.id) == worse
        assert vic.registry.get_version(MODEL, 2).tags["loopwright.gate.churn-release"] == (
            "failed"
        )
        with pytest.raises(PermissionDenied):
            evaluate_gate(gate, f"models:/{MODEL}/1", client=vic)
        with pytest.raises(NotFound, match="gate result 'nope' does not exist"):
            vic.gates.get("nope")
        with pytest.raises(InvalidInput, match="needs model=NAME too"):
            vic.gates.results(version=1)

        headers = {"Authorization": f"Bearer {tokens['ada']}"}
        body = {
            "spec": gate.to_dict(),
            "model": MODEL,
            "version": 1,
            "dataset_version_id": good.dataset_version_id,
            "outcomes": [{"rule": "metrics.auc >= 0.85", "value": 0.9, "passed": True}],
        }
        refused = [
            ({**body, "version": 0}, "version"),
            ({**body, "outcomes": []}, "outcomes"),
            ({**body, "spec": {**body["spec"], "rules": ["metrics.zzz > 1"]}}, "no metric 'zzz'"),
            ({**body, "extra": 1}, "extra"),
            (
                {**body, "outcomes": [{"rule": "r", "value": "high", "passed": True}]},
                "value",
            ),
        ]
        for bad, word in refused:
            answer = httpx.post(f"{url}/api/v1/gates/results", json=bad, headers=headers)
            assert 400 <= answer.status_code < 500 and word in answer.text, answer.text
        anonymous = httpx.get(f"{url}/api/v1/gates/results")
        assert anonymous.status_code == 401
        assert len(local.gates.results()) == 2  # nothing recorded by a refused call


def _local(settings: object) -> dict[str, Any]:
    return {
        "home": settings.home,  # type: ignore[attr-defined]
        "db_uri": settings.db_uri,  # type: ignore[attr-defined]
        "blob_uri": settings.blob_uri,  # type: ignore[attr-defined]
    }


def test_a_result_names_the_pipeline_run_that_made_the_version(client: Client) -> None:
    from loopwright.pipelines.service import PipelineService

    holdout = populate(client, only=1)
    run = PipelineService(client.store, tracking=client.tracking).start_run("flows.train:training")
    gate = load_gate_spec(spec("metrics.f1 >= 0.5"))
    result = evaluate_gate(gate, f"models:/{MODEL}/1", client=client, pipeline_run_id=run.id)
    assert result.pipeline_run_id == run.id and result.dataset_version_id == holdout
    assert GateService(client.store).get(result.id).pipeline_run_id == run.id


def test_concurrent_records_all_land_with_one_verdict_per_version(client: Client) -> None:
    import threading

    holdout = populate(client, only=1)
    settings = client.settings
    errors: list[BaseException] = []
    recorded: list[str] = []

    def check(outcomes: tuple[RuleOutcome, ...]) -> None:
        try:
            with Client(settings) as own:
                result = GateService(own.store).record(
                    GATE, model=MODEL, version=1, dataset_version_id=holdout, outcomes=outcomes
                )
                recorded.append(result.id)
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=check, args=(PASS if i % 2 else FAIL,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    newest = client.gates.results(model=MODEL)
    assert sorted(r.id for r in newest) == sorted(recorded) and len(recorded) == 4
    verdict = client.registry.get_version(MODEL, 1).tags["loopwright.gate.churn-release"]
    assert verdict in ("passed", "failed")
    assert sorted(_gate_events(client)) == sorted(recorded) and client.verify_audit().ok
