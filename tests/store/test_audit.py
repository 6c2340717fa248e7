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


def _delete_newest(client: Client, count: int) -> None:
    newest = [e.seq for e in events(client.store.db)][-count:]
    with client.store.db.write() as conn:  # someone trims the log in the database
        conn.execute(t.audit_events.delete().where(t.audit_events.c.seq.in_(newest)))


def test_deleting_the_newest_events_is_reported(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    for name in ("a", "b", "c", "d"):
        client.tracking.create_experiment(name)
    log = events(client.store.db)
    intact = verify_chain(client.store.db)
    assert intact.ok and (intact.head_seq, intact.head_hash) == (log[-1].seq, log[-1].hash)
    _delete_newest(client, 2)
    report = verify_chain(client.store.db)
    assert not report.ok and report.checked == 2 and report.broken_seq == log[-1].seq
    assert "newest events were deleted" in (report.reason or "")
    # Appending afterwards does not heal the gap: the new event links to a deleted one.
    client.tracking.create_experiment("e")
    later = verify_chain(client.store.db)
    assert not later.ok and later.checked == 2 and "removed" in (later.reason or "")
    client.close()


def test_deleting_every_event_is_reported(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    client.tracking.create_experiment("a")
    _delete_newest(client, 1)
    report = verify_chain(client.store.db)
    assert not report.ok and report.checked == 0 and "no events are left" in (report.reason or "")
    client.close()


def test_emptying_the_head_record_is_reported(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    client.tracking.create_experiment("a")
    with client.store.db.write() as conn:
        conn.execute(t.audit_head.delete())
    report = verify_chain(client.store.db)
    assert not report.ok and "head record is missing" in (report.reason or "")
    client.close()


def test_audit_cli_reports_a_truncated_tail_and_prints_the_head(tmp_path: Path) -> None:
    home = tmp_path / "home"
    client = Client(resolve_settings(home=home))
    for name in ("a", "b", "c"):
        client.tracking.create_experiment(name)
    head = events(client.store.db)[-1]
    runner = CliRunner()
    ok = runner.invoke(app, ["--home", str(home), "audit", "verify"])
    assert ok.exit_code == 0 and f"head #{head.seq} {head.hash}" in ok.stdout
    _delete_newest(client, 1)
    client.close()
    broken = runner.invoke(app, ["--home", str(home), "audit", "verify", "--json"])
    assert broken.exit_code == 1
    assert '"ok": false' in broken.stdout and "newest events were deleted" in broken.stdout


def test_migrating_an_existing_chain_anchors_its_newest_event(tmp_path: Path, db_uri: str) -> None:
    from alembic import command

    from loopwright.store.migrate import _alembic_config, ensure_schema

    client = _client(tmp_path, db_uri)
    for name in ("a", "b"):
        client.tracking.create_experiment(name)
    with client.store.db.engine.connect() as conn:  # 0013 onward undo themselves
        command.downgrade(_alembic_config(conn), "0012")
        conn.commit()
    with client.store.db.write() as conn:  # the store as revision 0005 left it
        conn.exec_driver_sql("DROP TABLE audit_head")
        later = [  # the columns revisions 0007 and 0008 add
            ("model_versions", "source_kind"),
            ("model_versions", "run_ref"),
            ("experiments", "artifact_location"),
        ]
        for table, column in later:
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        for table in ("deployment_instances", "deployment_revisions", "deployments"):  # 0009
            conn.exec_driver_sql(f"DROP TABLE {table}")
        for table in (  # 0012, 0011, then 0010
            "feature_materializations",
            "feature_definitions",
            "loop_transitions",
            "loop_iterations",
            "loops",
            "schedule_fires",
            "schedules",
            "gate_results",
            "step_runs",
            "pipeline_runs",
            "alerts",
            "ground_truth",
            "monitor_results",
            "monitor_runs",
            "monitors",
            "monitor_references",
        ):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0005'")
    ensure_schema(client.store.db)
    report = verify_chain(client.store.db)
    assert report.ok and report.head_seq == events(client.store.db)[-1].seq
    _delete_newest(client, 1)
    assert not verify_chain(client.store.db).ok
    client.close()


def test_an_anchor_kept_elsewhere_reveals_a_rebuilt_chain(tmp_path: Path, db_uri: str) -> None:
    """Someone with write access deletes an event and rebuilds every hash after it and the
    head: the chain verifies, and only the anchor (an earlier head) shows the rewrite."""
    from loopwright.store.audit import _event_hash

    client = _client(tmp_path, db_uri)
    for name in ("a", "b", "c"):
        client.tracking.create_experiment(name)
    head = verify_chain(client.store.db)
    anchor = (head.head_seq or 0, head.head_hash or "")
    assert verify_chain(client.store.db, anchor=anchor).ok
    first, second, third = events(client.store.db)
    with client.store.db.write() as conn:
        conn.execute(t.audit_events.delete().where(t.audit_events.c.seq == second.seq))
        row = dict(
            conn.execute(sa.select(t.audit_events).where(t.audit_events.c.seq == third.seq))
            .mappings()
            .one()
        )
        row["prev_hash"] = first.hash
        row["hash"] = _event_hash(row)
        conn.execute(
            t.audit_events.update()
            .where(t.audit_events.c.seq == third.seq)
            .values(prev_hash=row["prev_hash"], hash=row["hash"])
        )
        conn.execute(t.audit_head.update().values(hash=row["hash"]))
    assert verify_chain(client.store.db).ok  # what the chain alone cannot prove
    report = verify_chain(client.store.db, anchor=anchor)
    assert not report.ok and report.broken_seq == third.seq
    assert "rewritten" in (report.reason or "")
    client.close()


def test_audit_cli_checks_an_anchor(tmp_path: Path) -> None:
    home = tmp_path / "home"
    client = Client(resolve_settings(home=home))
    for name in ("a", "b"):
        client.tracking.create_experiment(name)
    first = events(client.store.db)[0]
    client.close()
    runner = CliRunner()
    base = ["--home", str(home), "audit", "verify", "--anchor"]
    assert runner.invoke(app, [*base, f"{first.seq}:{first.hash}"]).exit_code == 0
    forged = runner.invoke(app, [*base, f"{first.seq}:{'0' * 64}"])
    assert forged.exit_code == 1 and "anchored event" in forged.stderr
    bad = runner.invoke(app, [*base, "nonsense"])
    assert bad.exit_code == 1 and "SEQ:HASH" in bad.stderr
