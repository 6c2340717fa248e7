"""The scheduler on SQLite and PostgreSQL: time triggers fire once per due time and once after
downtime; event triggers once per alert or dataset version; loops get an iteration or a skipped
fire; two scheduler processes ticking the same schedules never fire one event twice; a
pipeline target runs end to end in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _schedule_fixtures import add_version, client_on, make_monitor, monitor_run

from loopwright.client import Client
from loopwright.loop.entities import Fire
from loopwright.loop.scheduler import Scheduler, job_environment, pipeline_command, run_id_of

MINUTE = 60_000


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    c = client_on(tmp_path / "home", db_uri)
    yield c
    c.close()


def _due(client: Client, name: str) -> int:
    due = client.schedules.get(name).next_fire_at
    assert due is not None
    return due


def test_a_time_trigger_fires_once_per_due_time(client: Client) -> None:
    client.schedules.create("every", target="ghost", trigger="interval:10m", target_kind="loop")
    due = _due(client, "every")
    scheduler = Scheduler(client, owner="s1", advance_loops=False)
    assert scheduler.tick(now_ms=due - 1) == []
    (fire,) = scheduler.tick(now_ms=due)
    assert (fire.event_key, fire.due_at, fire.owner) == (str(due), due, "s1")
    # The job could not start (no loop 'ghost'): recorded on the fire, not raised.
    assert fire.status == "failed" and "ghost" in (fire.detail or "")
    assert scheduler.tick(now_ms=due) == []
    assert scheduler.tick(now_ms=due + 10 * MINUTE - 1) == []
    (second,) = scheduler.tick(now_ms=due + 10 * MINUTE)
    assert second.due_at == due + 10 * MINUTE
    assert [f.event_key for f in client.schedules.fires("every")] == [
        str(due + 10 * MINUTE), str(due),
    ]  # fmt: skip


def test_a_scheduler_that_was_down_fires_once_for_the_missed_slots(
    tmp_path: Path, db_uri: str
) -> None:
    with client_on(tmp_path / "home", db_uri) as first:
        first.schedules.create("every", target="ghost", trigger="interval:10m", target_kind="loop")
        first.schedules.create(
            "nightly", target="ghost", trigger="cron:0 3 * * *", target_kind="loop"
        )
        due, nightly = _due(first, "every"), _due(first, "nightly")
        assert len(Scheduler(first, advance_loops=False).tick(now_ms=due)) == 1
    # Down for 7.5 intervals and three nights; a new process on the same database.
    later = nightly + 3 * 86_400_000 + 75 * MINUTE
    with client_on(tmp_path / "home", db_uri) as second:
        scheduler = Scheduler(second, owner="after-restart", advance_loops=False)
        fired = {f.schedule: f for f in scheduler.tick(now_ms=later)}
        assert set(fired) == {"every", "nightly"}
        # The earliest missed slot is the fire's due time; the next due time is in the future.
        assert fired["every"].due_at == due + 10 * MINUTE
        assert fired["nightly"].due_at == nightly
        every = second.schedules.get("every")
        assert every.next_fire_at is not None and later < every.next_fire_at <= later + 10 * MINUTE
        assert (every.next_fire_at - due) % (10 * MINUTE) == 0  # still in phase
        assert second.schedules.get("nightly").next_fire_at == nightly + 4 * 86_400_000
        assert scheduler.tick(now_ms=later) == []
        assert len(second.schedules.fires("every")) == 2
        assert len(second.schedules.fires("nightly")) == 1


def test_disabled_and_manual_schedules_do_not_fire(client: Client) -> None:
    client.schedules.create("off", target="ghost", trigger="interval:10m", target_kind="loop")
    client.schedules.create("by-hand", target="ghost", trigger="manual", target_kind="loop")
    due = _due(client, "off")
    client.schedules.set_enabled("off", False)
    assert Scheduler(client, advance_loops=False).tick(now_ms=due + 60 * MINUTE) == []
    assert client.schedules.fires("off") == [] and client.schedules.fires("by-hand") == []


def test_event_triggers_fire_once_per_alert_and_dataset_version(
    client: Client, tmp_path: Path
) -> None:
    monitor = make_monitor(client)
    monitor_run(client, monitor, share=0.5, accuracy=0.9)  # before the schedule: not an event
    add_version(client, tmp_path, "transactions", "a\n0\n")
    client.schedules.create(
        "on-drift", target="ghost", trigger=f"drift:{monitor.name}", target_kind="loop"
    )
    client.schedules.create(
        "on-perf", target="ghost", trigger=f"performance:{monitor.name}", target_kind="loop"
    )
    client.schedules.create(
        "on-data", target="ghost", trigger="dataset:transactions", target_kind="loop"
    )
    scheduler = Scheduler(client, advance_loops=False)
    assert scheduler.tick() == []

    monitor_run(client, monitor, share=0.1, accuracy=0.7)  # drift resolves, accuracy opens
    monitor_run(client, monitor, share=0.6, accuracy=0.7)  # drift reopens
    first = add_version(client, tmp_path, "transactions", "a\n1\n")
    second = add_version(client, tmp_path, "transactions", "a\n2\n")
    fired = scheduler.tick()
    by_schedule: dict[str, list[Fire]] = {}
    for fire in fired:
        by_schedule.setdefault(fire.schedule, []).append(fire)
    assert [f.event_key for f in by_schedule["on-data"]] == [first, second]
    (drift,) = by_schedule["on-drift"]
    (perf,) = by_schedule["on-perf"]
    alerts = {a.rule: a for a in client.monitoring.alerts(monitor=monitor.name, status="open")}
    assert drift.event_key == alerts["drift_share>0.3"].id
    assert perf.event_key == alerts["accuracy<0.8"].id
    assert scheduler.tick() == []
    assert client.schedules.get("on-data").cursor == second


def test_a_loop_target_gets_one_iteration_and_skips_while_it_is_in_flight(
    tmp_path: Path, db_uri: str
) -> None:
    from _loop_fixtures import DEPLOYMENT, HOLDOUT, PIPELINE, frame, world

    w = world(tmp_path, db_uri, approval=False)
    try:
        client = w.client
        client.loops.create(
            "churn-ct", deployment=DEPLOYMENT, pipeline=PIPELINE, require_approval=False,
            triggers=[f"dataset:{HOLDOUT}"], cwd=str(w.code),
        )  # fmt: skip
        (schedule,) = client.schedules.list(target="churn-ct")
        assert schedule.name == "loop:churn-ct:1" and schedule.target_kind == "loop"
        client.datasets.add(HOLDOUT, frame(600, 1))
        client.datasets.add(HOLDOUT, frame(600, 2))
        first, second = Scheduler(client, advance_loops=False).tick()
        assert first.status == "succeeded" and first.iteration_id is not None
        iteration = client.loops.get_iteration(first.iteration_id)
        assert iteration.state == "triggered" and iteration.trigger == f"dataset:{HOLDOUT}"
        assert f"{HOLDOUT}@v2" in (iteration.trigger_detail or "")
        assert second.status == "skipped" and "in flight" in (second.detail or "")
        assert second.iteration_id is None
    finally:
        w.client.close()
        w.approver.close()


# --- two scheduler processes -------------------------------------------------------------------

TICKER = """
import json, os, sys, time
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.loop.scheduler import Scheduler

home, db_uri, owner, base, step, ticks, go = sys.argv[1:]
client = Client(resolve_settings(home=home, db_uri=db_uri))
scheduler = Scheduler(client, owner=owner, advance_loops=False)
while not os.path.exists(go):
    time.sleep(0.005)
fired = []
for i in range(int(ticks)):
    now = int(base) + i * int(step)
    fired += [(f.id, f.schedule, f.event_key) for f in scheduler.tick(now_ms=now)]
client.close()
print(json.dumps(fired))
"""


def test_two_scheduler_processes_never_fire_one_event_twice(
    client: Client, tmp_path: Path, db_uri: str
) -> None:
    for i in range(3):
        client.schedules.create(f"t{i}", target="ghost", trigger="interval:10s", target_kind="loop")
    add_version(client, tmp_path, "tx", "a\n0\n")
    client.schedules.create("data", target="ghost", trigger="dataset:tx", target_kind="loop")
    versions = [add_version(client, tmp_path, "tx", f"a\n{i}\n") for i in range(1, 9)]
    base = max(_due(client, f"t{i}") for i in range(3))
    ticks, step = 40, 10_000
    script = tmp_path / "ticker.py"
    script.write_text(TICKER)
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / "home"),
                db_uri,
                owner,
                str(base),
                str(step),
                str(ticks),
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for owner in ("p1", "p2")
    ]
    time.sleep(2.0)  # both processes imported and connected: then start together
    go.write_text("go")
    reported: dict[str, list[list[str]]] = {}
    for owner, proc in zip(("p1", "p2"), procs, strict=True):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reported[owner] = json.loads(out.strip().splitlines()[-1])

    keys = [(s, k) for fires in reported.values() for _, s, k in fires]
    assert len(keys) == len(set(keys)), "an event was fired twice"
    ids = {fid: owner for owner, fires in reported.items() for fid, _, _ in fires}
    stored = [
        f for name in ("t0", "t1", "t2", "data") for f in client.schedules.fires(name, limit=1000)
    ]
    assert {f.id for f in stored} == set(ids)  # every fire was reported by the one who took it
    for fire in stored:
        assert fire.owner == ids[fire.id]
        assert fire.status == "failed" and "ghost" in (fire.detail or "")  # each job tried once
    # Every slot of the ticked span fired once, whoever took it.
    for i in range(3):
        due = [f.due_at for f in stored if f.schedule == f"t{i}"]
        first = min(due)
        assert sorted(due) == [first + n * step for n in range(len(due))]
        assert first + (len(due) - 1) * step <= base + (ticks - 1) * step
        assert len(due) >= ticks - 1
    assert sorted(f.event_key for f in stored if f.schedule == "data") == sorted(versions)


# --- a pipeline target -------------------------------------------------------------------------

PIPELINE_MODULE = """
from loopwright.pipelines import pipeline, step


@step
def double(x: int) -> int:
    return 2 * x


@pipeline
def flow(x: int = 1, label: str = "none") -> int:
    return double(x)


@pipeline
def broken(x: int = 1) -> int:
    raise RuntimeError("the pipeline broke on purpose")
"""


def test_pipeline_command_and_environment(client: Client, tmp_path: Path) -> None:
    schedule = client.schedules.create(
        "p", target="mod:flow", trigger="manual", params={"x": 3, "tags": ["a"], "label": "hi"},
        cwd=str(tmp_path),
    )  # fmt: skip
    command = pipeline_command(schedule)
    assert command[:6] == [sys.executable, "-m", "loopwright.cli", "pipelines", "run", "mod:flow"]
    assert command.count("--param") == 3
    assert "x=3" in command and 'tags=["a"]' in command and "label=hi" in command
    env = job_environment(client)
    assert env["LOOPWRIGHT_DB_URI"] == client.settings.db_uri
    assert env["LOOPWRIGHT_HOME"] == str(client.settings.home)
    assert "LOOPWRIGHT_SERVER_URI" not in env


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('{"id": "abc", "status": "completed"}\n', "abc"),
        ('step train done\n{\n  "id": "abc",\n  "steps": [\n    {"id": "s1"}\n  ]\n}\n', "abc"),
        ('{"id": "old"}\nprinted {braces}\n{"id": "new"}', "new"),
        ("no json at all", None),
        ('{"id": 7}', None),
        ("{not json", None),
        ("", None),
    ],
)
def test_the_run_id_is_read_from_the_json_output(stdout: str, expected: str | None) -> None:
    assert run_id_of(stdout) == expected


def test_a_pipeline_target_runs_end_to_end(client: Client, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "sched_flow.py").write_text(textwrap.dedent(PIPELINE_MODULE))
    client.schedules.create(
        "good", target="sched_flow:flow", trigger="interval:1h", params={"x": 21, "label": "s"},
        cwd=str(code),
    )  # fmt: skip
    client.schedules.create("bad", target="sched_flow:broken", trigger="interval:1h", cwd=str(code))
    client.schedules.create(
        "gone", target="no_such_module:flow", trigger="interval:1h", cwd=str(code)
    )
    scheduler = Scheduler(client, owner="s", advance_loops=False)
    started = scheduler.tick(now_ms=max(_due(client, n) for n in ("good", "bad", "gone")) + 1)
    assert {f.schedule for f in started} == {"good", "bad", "gone"}
    assert all(f.status == "started" for f in started)  # the tick does not wait for the jobs
    assert scheduler.wait(timeout=300)
    ended = {f.schedule: f for f in scheduler.outcomes(started)}
    good = ended["good"]
    assert good.status == "succeeded", good.detail
    assert good.pipeline_run_id is not None and good.finished_at is not None
    run = client.pipelines.get_run(good.pipeline_run_id)
    assert run.status == "completed" and run.pipeline == "sched_flow:flow"
    assert dict(run.params)["x"] == 21
    assert ended["bad"].status == "failed" and "broke on purpose" in (ended["bad"].detail or "")
    assert ended["gone"].status == "failed" and "no_such_module" in (ended["gone"].detail or "")
    # What `schedules show` reads is what the jobs recorded.
    assert client.schedules.fires("good")[0] == good


def test_a_scheduler_on_a_server_and_one_on_the_store_share_the_fires(
    tmp_path: Path, db_uri: str
) -> None:
    """A scheduler works on any client: through a server (claims over HTTP, decided by the
    server's database) it takes turns with an embedded one; no event fires twice."""
    import loopwright as lw
    from loopwright.config import resolve_settings
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from test_public_api import live_server

    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri)
    with client_on(tmp_path / "home", db_uri) as local:
        UserService(local.store, actor="root").add("ed", "editor")
        secret = TokenService(local.store, actor="root").create("ed").secret
        add_version(local, tmp_path, "tx", "a\n0\n")
        local.schedules.create("on-data", target="ghost", trigger="dataset:tx", target_kind="loop")
        local.schedules.create("every", target="ghost", trigger="interval:10s", target_kind="loop")
        due = _due(local, "every")
        with (
            live_server(settings) as url,
            lw.connect(url, token=secret, home=tmp_path / "ed") as ed,
        ):
            remote_scheduler = Scheduler(ed, owner="remote", advance_loops=False)
            local_scheduler = Scheduler(local, owner="local", advance_loops=False)
            first = add_version(local, tmp_path, "tx", "a\n1\n")
            taken = remote_scheduler.tick(now_ms=due)
            assert {(f.schedule, f.event_key) for f in taken} == {
                ("on-data", first), ("every", str(due)),
            }  # fmt: skip
            assert all(f.owner == "remote" and f.status == "failed" for f in taken)
            assert local_scheduler.tick(now_ms=due) == []
            second = add_version(local, tmp_path, "tx", "a\n2\n")
            (mine,) = local_scheduler.tick(now_ms=due)
            assert (mine.event_key, mine.owner) == (second, "local")
            assert remote_scheduler.tick(now_ms=due) == []
            assert len(ed.schedules.fires("on-data")) == 2


def test_run_monitors_runs_the_due_monitors_before_firing(client: Client) -> None:
    from datetime import timedelta

    client.monitoring.create("m", deployment="churn-api", every=timedelta(minutes=1))
    Scheduler(client, advance_loops=False).tick()
    assert client.monitoring.get("m").last_run_at is None  # off by default
    Scheduler(client, advance_loops=False, run_monitors=True).tick()
    (run,) = client.monitoring.history("m")
    assert run.status == "no_data"  # nothing served yet; the monitor ran


def test_a_pipeline_job_of_a_remote_scheduler_records_through_the_server(
    tmp_path: Path, db_uri: str
) -> None:
    import loopwright as lw
    from loopwright.config import resolve_settings
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from test_public_api import live_server

    code = tmp_path / "code"
    code.mkdir()
    (code / "remote_flow.py").write_text(textwrap.dedent(PIPELINE_MODULE))
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri)
    with client_on(tmp_path / "home", db_uri) as local:
        UserService(local.store, actor="root").add("ed", "editor")
        secret = TokenService(local.store, actor="root").create("ed").secret
        with (
            live_server(settings) as url,
            lw.connect(url, token=secret, home=tmp_path / "ed") as ed,
        ):
            env = job_environment(ed)
            assert env["LOOPWRIGHT_SERVER_URI"] == url and env["LOOPWRIGHT_TOKEN"] == secret
            assert "LOOPWRIGHT_DB_URI" not in env  # the job talks to the server, not the store
            ed.schedules.create(
                "remote", target="remote_flow:flow", trigger="interval:1h", params={"x": 4},
                cwd=str(code),
            )  # fmt: skip
            scheduler = Scheduler(ed, advance_loops=False)
            started = scheduler.tick(now_ms=_due(ed, "remote"))
            assert scheduler.wait(timeout=300)
            (fire,) = scheduler.outcomes(started)
            assert fire.status == "succeeded", fire.detail
            assert fire.pipeline_run_id is not None
            run = local.pipelines.get_run(fire.pipeline_run_id)
            assert run.status == "completed" and dict(run.params)["x"] == 4
            tracked = local.get_run(run.run_id) if run.run_id else None
            assert tracked is not None and tracked.user == "ed"  # recorded as the token's user


def test_a_time_schedule_without_a_due_time_fires_once_then_keeps_its_phase(
    client: Client,
) -> None:

    from loopwright.store import schema as t

    client.schedules.create("bare", target="ghost", trigger="interval:10m", target_kind="loop")
    with client.store.db.write() as conn:  # as a row written by hand or an old version would be
        conn.execute(t.schedules.update().values(next_fire_at=None))
    scheduler = Scheduler(client, advance_loops=False)
    (fire,) = scheduler.tick(now_ms=5 * MINUTE)
    assert fire.due_at == 5 * MINUTE
    assert client.schedules.get("bare").next_fire_at == 15 * MINUTE
    assert scheduler.tick(now_ms=14 * MINUTE) == []
