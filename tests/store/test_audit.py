"""The audit log: state changes append hash-chained events; tampering is found and located."""

from __future__ import annotations

import itertools
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.store import schema as t
from loopwright.store.audit import GENESIS, events, verify_chain


def _client(tmp_path: Path, db_uri: str) -> Client:
    return Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri))


def test_state_changes_are_recorded_in_one_chain(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    client.tracking.create_experiment("exp")
    client.tracking.rename_experiment("exp", "renamed")
    with client.start_run(experiment="renamed") as run:
        pass
    client.tracking.set_lifecycle(run.id, "deleted")
    client.tracking.set_lifecycle(run.id, "active")
    (tmp_path / "a.txt").write_text("a")
    client.datasets.add("ds", tmp_path / "a.txt", aliases=["golden"])

    log = events(client.store.db)
    assert [e.action for e in log] == [
        "experiment.create",
        "experiment.rename",
        "run.delete",
        "run.restore",
        "dataset_version.create",
        "dataset.alias",
    ]
    assert log[1].before == {"name": "exp"} and log[1].after == {"name": "renamed"}
    assert log[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(log))
    assert [e.action for e in events(client.store.db, subject_id=run.id)] == [
        "run.delete",
        "run.restore",
    ]
    report = verify_chain(client.store.db)
    assert report.ok and report.checked == 6
    client.close()


def test_an_edited_row_is_found_and_named(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    for name in ("a", "b", "c"):
        client.tracking.create_experiment(name)
    second = events(client.store.db)[1]
    with client.store.db.write() as conn:  # someone edits the database directly
        conn.execute(
            t.audit_events.update()
            .where(t.audit_events.c.seq == second.seq)
            .values(after_json='{"name":"evil"}')
        )
    report = verify_chain(client.store.db)
    assert not report.ok and report.broken_seq == second.seq and "edited" in (report.reason or "")
    client.close()


def test_a_deleted_row_breaks_the_next_link(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    for name in ("a", "b", "c"):
        client.tracking.create_experiment(name)
    _first, second, third = events(client.store.db)
    with client.store.db.write() as conn:
        conn.execute(t.audit_events.delete().where(t.audit_events.c.seq == second.seq))
    report = verify_chain(client.store.db)
    assert not report.ok and report.broken_seq == third.seq and report.checked == 1
    client.close()


def test_audit_cli_lists_and_verifies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    client = Client(resolve_settings(home=home))
    client.tracking.create_experiment("exp")
    client.close()
    runner = CliRunner()
    ok = runner.invoke(app, ["--home", str(home), "audit", "verify"])
    assert ok.exit_code == 0 and "1 event(s) verified" in ok.stdout
    listed = runner.invoke(app, ["--home", str(home), "audit", "log", "--json"])
    assert '"experiment.create"' in listed.stdout
    engine = sa.create_engine(f"sqlite:///{home / 'loopwright.db'}")
    with engine.begin() as conn:
        conn.execute(t.audit_events.update().values(actor="mallory"))
    engine.dispose()
    broken = runner.invoke(app, ["--home", str(home), "audit", "verify"])
    assert broken.exit_code == 1 and "broken at event #1" in broken.stderr
