"""Schedules and fires, embedded and through a real server (SQLite and PostgreSQL): create,
claim once, forward-only cursor and due time, finish, enable afresh, audit, bad input."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from _schedule_fixtures import add_version, make_monitor, monitor_run

import loopwright as lw
from loopwright._ids import now_ms
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from loopwright.store.audit import events as audit_events
from test_public_api import live_server


@dataclass
class Setup:
    kind: str
    client: Client  # an editor (ed)
    local: Client  # the same store, embedded (for fixtures and the audit log)
    viewer: Client | None  # vic, remote only


def _settings(tmp_path: Path, db_uri: str, user: str | None = None) -> Settings:
    return resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user=user
    )


@pytest.fixture(params=["embedded", "remote"])
def setup(request: pytest.FixtureRequest, tmp_path: Path, db_uri: str) -> Iterator[Setup]:
    with _setup(request.param, tmp_path, db_uri) as made:
        yield made


@pytest.fixture
def remote(tmp_path: Path, db_uri: str) -> Iterator[Setup]:
    with _setup("remote", tmp_path, db_uri) as made:
        yield made


@contextmanager
def _setup(kind: str, tmp_path: Path, db_uri: str) -> Iterator[Setup]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    with Client(_settings(tmp_path, db_uri, user="ed")) as local:
        if kind == "embedded":
            yield Setup("embedded", local, local, None)
            return
        users = UserService(local.store, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("vic", "viewer")):
            users.add(name, role)
        tokens = TokenService(local.store, actor="root")
        secrets = {name: tokens.create(name).secret for name in ("ed", "vic")}
        with (
            live_server(_settings(tmp_path, db_uri)) as url,
            lw.connect(url, token=secrets["ed"], home=tmp_path / "ed-home") as ed,
            lw.connect(url, token=secrets["vic"], home=tmp_path / "vic-home") as vic,
        ):
            yield Setup("remote", ed, local, vic)


def test_create_read_list_delete(setup: Setup) -> None:
    schedules = setup.client.schedules
    before = now_ms()
    nightly = schedules.create(
        "nightly", target="churn.train:pipeline", trigger="cron:0  3 * * *",
        params={"epochs": 10, "note": "x"}, cwd="/srv/churn",
    )  # fmt: skip
    assert nightly.trigger.text == "cron:0 3 * * *" and nightly.trigger.kind == "cron"
    assert nightly.enabled and nightly.target_kind == "pipeline"
    assert nightly.params == {"epochs": 10, "note": "x"} and nightly.cwd == "/srv/churn"
    assert nightly.created_by == "ed"
    assert nightly.next_fire_at is not None
    assert before < nightly.next_fire_at <= before + 86_400_000
    assert nightly.next_fire_at % 86_400_000 == 3 * 3_600_000  # 03:00 UTC
    assert nightly.cursor is None and nightly.last_fired_at is None

    hourly = schedules.create(
        "loop:churn:1", target="churn", trigger="interval:1h", target_kind="loop"
    )
    assert hourly.next_fire_at is not None and hourly.next_fire_at - hourly.created_at == 3_600_000
    manual = schedules.create("by-hand", target="a.b:c", trigger="manual")
    assert manual.next_fire_at is None

    assert schedules.get("nightly") == nightly
    assert [s.name for s in schedules.list()] == ["by-hand", "loop:churn:1", "nightly"]
    assert [s.name for s in schedules.list(target="churn")] == ["loop:churn:1"]
    assert schedules.fires("nightly") == []

    schedules.delete("nightly")
    with pytest.raises(NotFound, match="schedule 'nightly' does not exist; schedules: by-hand"):
        schedules.get("nightly")
    assert [s.name for s in schedules.list()] == ["by-hand", "loop:churn:1"]


def test_claim_once_and_move_forward_only(setup: Setup) -> None:
    schedules = setup.client.schedules
    base = schedules.create("every", target="m:f", trigger="interval:10m").next_fire_at
    assert base is not None
    key, following = str(base), base + 600_000
    fire = schedules.claim("every", event_key=key, due_at=base, owner="a", next_fire_at=following)
    assert fire is not None
    assert (fire.schedule, fire.event_key, fire.due_at, fire.owner, fire.status) == (
        "every", key, base, "a", "started",
    )  # fmt: skip
    assert fire.finished_at is None and fire.pipeline_run_id is None
    # The same event again: another scheduler took it.
    assert schedules.claim("every", event_key=key, due_at=base, owner="b") is None
    got = schedules.get("every")
    assert got.next_fire_at == following and got.last_fired_at == fire.fired_at
    # A late claim with an older due time does not wind the schedule back.
    late = schedules.claim("every", event_key="900", due_at=900, owner="b", next_fire_at=base)
    assert late is not None
    assert schedules.get("every").next_fire_at == following
    # Cursors too move only forward.
    schedules.claim("every", event_key="k2", due_at=1, owner="a", cursor="0002")
    schedules.claim("every", event_key="k1", due_at=1, owner="a", cursor="0001")
    assert schedules.get("every").cursor == "0002"

    done = schedules.finish(fire.id, "succeeded", detail="pipeline run x", iteration_id="it1")
    assert done.status == "succeeded" and done.detail == "pipeline run x"
    assert done.iteration_id == "it1" and done.finished_at is not None
    # A pipeline run id the store does not know is not linked (the detail names it).
    failed = schedules.finish(late.id, "failed", pipeline_run_id="f" * 32, detail="exit 1: boom")
    assert failed.status == "failed" and failed.pipeline_run_id is None
    fires = schedules.fires("every")
    assert [f.event_key for f in fires][:2] == ["k1", "k2"]  # newest first
    assert {f.event_key for f in fires} == {key, "900", "k1", "k2"}
    assert [f.event_key for f in schedules.fires("every", limit=1)] == ["k1"]


def test_a_disabled_schedule_does_not_fire_and_enables_afresh(setup: Setup, tmp_path: Path) -> None:
    schedules = setup.client.schedules
    add_version(setup.local, tmp_path, "transactions", "a\n1\n")
    watch = schedules.create("on-data", target="m:f", trigger="dataset:transactions")
    assert watch.cursor == setup.local.datasets.get("transactions@v1").id  # past: not an event
    timed = schedules.create("timed", target="m:f", trigger="interval:10m")

    assert schedules.set_enabled("on-data", False).enabled is False
    assert schedules.set_enabled("on-data", False).enabled is False  # no change, no error
    assert schedules.claim("on-data", event_key="x", due_at=1, owner="a") is None
    newer = add_version(setup.local, tmp_path, "transactions", "a\n2\n")
    enabled = schedules.set_enabled("on-data", True)
    assert enabled.enabled and enabled.cursor == newer  # what came while disabled is skipped

    schedules.set_enabled("timed", False)
    assert timed.next_fire_at is not None
    enabled = schedules.set_enabled("timed", True)
    assert enabled.next_fire_at is not None and enabled.next_fire_at >= timed.next_fire_at

    actions = [
        (e.action, e.actor) for e in audit_events(setup.local.store.db, subject_type="schedule")
    ]
    assert actions == [
        ("schedule.create", "ed"),
        ("schedule.create", "ed"),
        ("schedule.disable", "ed"),
        ("schedule.enable", "ed"),
        ("schedule.disable", "ed"),
        ("schedule.enable", "ed"),
    ]
    schedules.delete("timed")
    last = list(audit_events(setup.local.store.db, subject_type="schedule"))[-1]
    assert last.action == "schedule.delete" and last.before["name"] == "timed"


def test_event_trigger_cursor_starts_at_the_newest_alert(setup: Setup) -> None:
    monitor = make_monitor(setup.local)
    empty = setup.client.schedules.create("d0", target="m:f", trigger=f"drift:{monitor.name}")
    assert empty.cursor is None and empty.next_fire_at is None
    monitor_run(setup.local, monitor, share=0.5, accuracy=0.9)
    (alert,) = setup.local.monitoring.alerts(monitor=monitor.name)
    later = setup.client.schedules.create("d1", target="m:f", trigger=f"alert:{monitor.name}")
    assert later.cursor == alert.id


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"name": "", "target": "m:f", "trigger": "manual"}, InvalidInput, "schedule name"),
        ({"name": "-x", "target": "m:f", "trigger": "manual"}, InvalidInput, "schedule name"),
        ({"name": "a/b", "target": "m:f", "trigger": "manual"}, InvalidInput, "schedule name"),
        ({"name": "s" * 151, "target": "m:f", "trigger": "manual"}, InvalidInput, "1-150"),
        ({"name": "s", "target": "nocolon", "trigger": "manual"}, InvalidInput, "MODULE:FUNCTION"),
        ({"name": "s", "target": "a b:c", "trigger": "manual"}, InvalidInput, "MODULE:FUNCTION"),
        (
            {"name": "s", "target": "x", "trigger": "manual", "target_kind": "job"},
            InvalidInput,
            "'pipeline' or 'loop'",
        ),
        (
            {"name": "s", "target": "a:b", "trigger": "manual", "target_kind": "loop"},
            InvalidInput,
            "loop target",
        ),
        ({"name": "s", "target": "m:f", "trigger": "hourly"}, InvalidInput, "is not a trigger"),
        ({"name": "s", "target": "m:f", "trigger": "drift:nope"}, NotFound, "monitor 'nope'"),
        ({"name": "s", "target": "m:f", "trigger": "dataset:nope"}, NotFound, "dataset 'nope'"),
        (
            {"name": "s", "target": "m:f", "trigger": "manual", "params": {"x": float("nan")}},
            InvalidInput,
            "params",
        ),
    ],
)
def test_bad_schedules_are_refused(
    setup: Setup, options: dict[str, object], error: type[Exception], says: str
) -> None:
    options = dict(options)  # the parameters are shared by every backend's run
    name = options.pop("name")
    with pytest.raises(error, match=says):
        setup.client.schedules.create(name, **options)  # type: ignore[arg-type]
    assert setup.client.schedules.list() == []


def test_other_mistakes_name_the_object(setup: Setup) -> None:
    schedules = setup.client.schedules
    schedules.create("s", target="m:f", trigger="manual")
    with pytest.raises(AlreadyExists, match="schedule 's' already exists"):
        schedules.create("s", target="m:f", trigger="manual")
    with pytest.raises(NotFound, match="schedule 'nope' does not exist; schedules: s"):
        schedules.claim("nope", event_key="k", due_at=1, owner="a")
    with pytest.raises(NotFound, match="schedule fire"):
        schedules.finish("0" * 32, "failed")
    fire = schedules.claim("s", event_key="k", due_at=1, owner="a")
    assert fire is not None
    with pytest.raises(InvalidInput, match="started, succeeded, failed, skipped"):
        schedules.finish(fire.id, "done")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        schedules.claim("s", event_key="", due_at=1, owner="a")
    with pytest.raises(InvalidInput):
        schedules.fires("s", limit=0)
    with pytest.raises(InvalidInput, match="true or false"):
        schedules.set_enabled("s", "yes")  # type: ignore[arg-type]


def test_a_viewer_reads_but_cannot_change_or_claim(remote: Setup) -> None:
    setup = remote
    assert setup.viewer is not None
    setup.client.schedules.create("s", target="m:f", trigger="interval:1h")
    assert [s.name for s in setup.viewer.schedules.list()] == ["s"]
    assert setup.viewer.schedules.fires("s") == []
    with pytest.raises(PermissionDenied):
        setup.viewer.schedules.create("t", target="m:f", trigger="manual")
    with pytest.raises(PermissionDenied):
        setup.viewer.schedules.claim("s", event_key="k", due_at=1, owner="v")
    with pytest.raises(PermissionDenied):
        setup.viewer.schedules.set_enabled("s", False)
    with pytest.raises(PermissionDenied):
        setup.viewer.schedules.delete("s")


def test_concurrent_claims_of_one_event_give_one_fire(setup: Setup) -> None:
    schedules = setup.client.schedules
    schedules.create("race", target="m:f", trigger="interval:1h")
    barrier = threading.Barrier(6)
    won: list[object] = []

    def claim(owner: str) -> None:
        barrier.wait()
        won.append(schedules.claim("race", event_key="slot", due_at=1, owner=owner))

    threads = [threading.Thread(target=claim, args=(f"o{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fire is not None for fire in won) == 1
    assert len(schedules.fires("race")) == 1
