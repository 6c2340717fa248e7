"""The scheduler: fires due schedules and starts their jobs, on any client.

Each :meth:`Scheduler.tick` reads every enabled schedule, finds what is due (a time trigger
whose ``next_fire_at`` has passed, an event trigger's new alerts or dataset versions), claims
each fire through ``client.schedules.claim`` (the database's unique fire row: of several
schedulers, on one machine or many, exactly one starts each job) and starts the job:

- a ``pipeline`` target runs as ``python -m loopwright.cli pipelines run TARGET --param k=v --json``
  in the schedule's ``cwd``, against the same store or server as this client; a thread waits for
  it and records the outcome and the pipeline run on the fire, so a tick never waits for a job;
- a ``loop`` target opens an iteration (``client.loops.start_iteration``); one already in
  flight, or a paused loop, makes the fire ``skipped`` with the reason.

Then in-flight loop iterations are moved on (``loop.driver.advance_all``).

All state is in the database, so a scheduler can stop and start at will. One that was down
fires a time trigger ONCE for the slots it missed (the earliest missed slot is the fire's due
time, and the next due time is the first one after now), not once per missed slot.

Example:
    >>> import loopwright as lw
    >>> client = lw.connect(home="lw-doc-scheduler")
    >>> Scheduler(client, advance_loops=False).tick()  # no schedules yet
    []
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

from .. import _ids
from ..errors import Conflict, LoopwrightError
from ..store import limits
from .triggers import EVENT_KINDS, TIME_KINDS, events, next_due

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..client import Client
    from .entities import Fire, Schedule

__all__ = ["Scheduler", "job_environment", "pipeline_command", "run_id_of"]

logger = logging.getLogger(__name__)

_DETAIL_TAIL = 2000  # characters of a failed job's stderr kept on the fire
_KEPT = 1000  # ended pipeline fires remembered for outcomes() / ended()


def pipeline_command(schedule: Schedule) -> list[str]:
    """The command line that runs a pipeline schedule's job."""
    command = [
        sys.executable,
        "-m",
        "loopwright.cli",
        "pipelines",
        "run",
        schedule.target,
        "--json",
    ]
    for key, value in schedule.params.items():
        text = value if isinstance(value, str) else json.dumps(value)
        command += ["--param", f"{key}={text}"]
    return command


def job_environment(client: Client) -> dict[str, str]:
    """This process's environment, naming the store (embedded) or server (remote) ``client``
    works on, so the job records into the same place whatever its cwd's ``loopwright.toml``
    says (the environment outranks the file)."""
    settings = client.settings
    env = dict(os.environ)
    for key in ("LOOPWRIGHT_HOME", "LOOPWRIGHT_DB_URI", "LOOPWRIGHT_BLOB_URI"):
        env.pop(key, None)
    env.pop("LOOPWRIGHT_SERVER_URI", None)
    if settings.server_uri is not None:
        env["LOOPWRIGHT_SERVER_URI"] = settings.server_uri
        if settings.token is not None:
            env["LOOPWRIGHT_TOKEN"] = settings.token
    else:
        env["LOOPWRIGHT_HOME"] = str(settings.home)
        env["LOOPWRIGHT_DB_URI"] = settings.db_uri
        env["LOOPWRIGHT_BLOB_URI"] = settings.blob_uri
        if settings.prediction_log is not None:
            env["LOOPWRIGHT_PREDICTION_LOG"] = settings.prediction_log
    if settings.user is not None:
        env["LOOPWRIGHT_USER"] = settings.user
    return env


def run_id_of(stdout: str) -> str | None:
    """The pipeline run's id from ``pipelines run --json``: the last JSON object of its output
    (on one line or indented over many; lines a pipeline printed before it are skipped)."""
    lines = stdout.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].lstrip().startswith("{"):
            continue
        try:
            value = json.loads("\n".join(lines[i:]))
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return str(value["id"])
    return None


class Scheduler:
    """Fires schedules for ``client``; run :meth:`tick` periodically or :meth:`run_forever`.

    Args:
        client: where the schedules are (embedded or a server).
        owner: this scheduler's name on the fires it claims (default: host, pid and a random
            part).
        advance_loops: after firing, move in-flight loop iterations on (``driver.advance_all``).
        run_monitors: before firing, run the monitors that are due (``monitoring.run_due``), so
            the alerts they open fire drift/performance/alert triggers in the same tick. Off by
            default: several schedulers would each run a due monitor (``monitors run-due`` on
            one machine's cron is the alternative).
    """

    def __init__(
        self,
        client: Client,
        *,
        owner: str | None = None,
        advance_loops: bool = True,
        run_monitors: bool = False,
    ) -> None:
        self.client = client
        self.owner = owner or f"{socket.gethostname()[:100]}:{os.getpid()}:{_ids.new_id()[-8:]}"
        self.advance_loops = advance_loops
        self.run_monitors = run_monitors
        self._jobs: list[threading.Thread] = []
        self._outcomes: dict[str, Fire] = {}  # fires whose pipeline job has ended
        self._ended: list[Fire] = []  # ... not yet handed out by ended()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def tick(self, now_ms: int | None = None) -> list[Fire]:
        """Fire everything due at ``now_ms`` (default: now) and start the jobs; the fires this
        scheduler claimed. A schedule that cannot be read (its monitor deleted, say) is logged
        and skipped; the others still fire."""
        now = _ids.now_ms() if now_ms is None else now_ms
        if self.run_monitors:
            try:
                self.client.monitoring.run_due()
            except LoopwrightError as exc:  # schedules still fire on what is there
                logger.warning("running due monitors failed: %s", exc)
        fired: list[Fire] = []
        for schedule in self.client.schedules.list():
            if not schedule.enabled:
                continue
            try:
                fired += self._fire_schedule(schedule, now)
            except LoopwrightError as exc:
                logger.warning("schedule %r: not fired: %s", schedule.name, exc)
        if self.advance_loops:
            from .driver import advance_all

            try:
                advance_all(self.client, owner=self.owner, now_ms=now_ms)
            except Exception:  # the fires above are claimed and started: still return them
                logger.exception("advancing loop iterations failed")
        return fired

    def run_forever(
        self,
        interval_s: float = 10.0,
        stop: threading.Event | None = None,
        *,
        on_tick: Callable[[list[Fire]], None] | None = None,
    ) -> None:
        """Tick every ``interval_s`` seconds until ``stop`` is set, handing each tick's fires to
        ``on_tick``; a tick that fails is logged and the next one runs (the database may come
        back)."""
        if not 0 < interval_s <= 86_400:
            raise ValueError(f"interval_s {interval_s} must be above 0 and at most 86400 seconds")
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                fired = self.tick()
                if on_tick is not None:
                    on_tick(fired)
            except Exception:  # a scheduler outlives a failed tick (database restart, network)
                logger.exception("scheduler tick failed; retrying in %s s", interval_s)
            stop.wait(interval_s)

    def start(self, interval_s: float = 10.0) -> None:
        """Run :meth:`run_forever` in a background thread (a server's ``--scheduler``) until
        :meth:`stop`."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError(f"scheduler {self.owner} is already running")
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run_forever, args=(interval_s, self._stop), name="loopwright-scheduler",
                daemon=True,
            )  # fmt: skip
            self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the background thread of :meth:`start` after its current tick."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the pipeline jobs started so far to end and be recorded; False if some
        still run after ``timeout`` seconds."""
        with self._lock:
            jobs = list(self._jobs)
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in jobs:
            job.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._jobs = [job for job in self._jobs if job.is_alive()]
            return not self._jobs

    def outcomes(self, fires: list[Fire]) -> list[Fire]:
        """``fires`` as their pipeline jobs ended (those still running as they were)."""
        with self._lock:
            return [self._outcomes.get(fire.id, fire) for fire in fires]

    def ended(self) -> list[Fire]:
        """The pipeline fires whose jobs ended since the last call, as recorded."""
        with self._lock:
            ended, self._ended = self._ended, []
        return ended

    # --- firing ------------------------------------------------------------------------------

    def _fire_schedule(self, schedule: Schedule, now: int) -> list[Fire]:
        schedules = self.client.schedules
        trigger = schedule.trigger
        if trigger.kind in TIME_KINDS:
            due = schedule.next_fire_at
            if due is None:  # not set (a row written by hand): due now, in phase from here
                due = now
            if due > now:
                return []
            following = next_due(trigger, after=now, previous=due)
            fire = schedules.claim(
                schedule.name, event_key=str(due), due_at=due, owner=self.owner,
                next_fire_at=following,
            )  # fmt: skip
            if fire is None:
                return []
            late = (now - due) // 1000
            detail = f"due at {due}" + (f" ({late} s late; missed slots fire once)" if late else "")
            return [self._start(schedule, fire, detail)]
        if trigger.kind not in EVENT_KINDS:
            return []  # manual: only when asked
        fired = []
        for event in events(self.client, trigger, cursor=schedule.cursor, now_ms=now):
            fire = schedules.claim(
                schedule.name, event_key=event.key, due_at=event.at, owner=self.owner,
                cursor=event.key,
            )  # fmt: skip
            if fire is not None:
                fired.append(self._start(schedule, fire, event.detail))
        return fired

    def _start(self, schedule: Schedule, fire: Fire, detail: str) -> Fire:
        """Start the fire's job; a job that cannot start is recorded as failed, not raised."""
        schedules = self.client.schedules
        try:
            if schedule.target_kind == "loop":
                return self._start_iteration(schedule, fire, detail)
            return self._start_pipeline(schedule, fire)
        except Exception as exc:  # recorded on the fire, so `schedules show` says what happened
            logger.warning("schedule %r: job did not start: %s", schedule.name, exc)
            return schedules.finish(fire.id, "failed", detail=f"{type(exc).__name__}: {exc}")

    def _start_iteration(self, schedule: Schedule, fire: Fire, detail: str) -> Fire:
        schedules = self.client.schedules
        try:
            iteration = self.client.loops.start_iteration(
                schedule.target, trigger=schedule.trigger.text,
                detail=detail[: limits.REGISTRY_TAG_VALUE],
            )  # fmt: skip
        except Conflict as exc:
            return schedules.finish(fire.id, "skipped", detail=str(exc))
        return schedules.finish(
            fire.id, "succeeded", iteration_id=iteration.id,
            detail=f"iteration {iteration.number} of loop {schedule.target} started: {detail}",
        )  # fmt: skip

    def _start_pipeline(self, schedule: Schedule, fire: Fire) -> Fire:
        process = subprocess.Popen(  # our own interpreter, no shell
            pipeline_command(schedule),
            cwd=schedule.cwd,
            env=job_environment(self.client),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own session: a Ctrl-C or SIGTERM to the scheduler does not kill a running job.
            start_new_session=True,
        )
        job = threading.Thread(
            target=self._wait_pipeline, args=(process, fire), name=f"schedule-job-{fire.id[-8:]}",
            daemon=True,
        )  # fmt: skip
        with self._lock:
            self._jobs = [j for j in self._jobs if j.is_alive()]
            self._jobs.append(job)
        job.start()
        return fire

    def _wait_pipeline(self, process: subprocess.Popen[str], fire: Fire) -> None:
        stdout, stderr = process.communicate()
        run_id = run_id_of(stdout)
        ok = process.returncode == 0
        detail: str | None = None
        if not ok:
            tail = (stderr or stdout or "").strip()[-_DETAIL_TAIL:]
            detail = f"exit {process.returncode}: {tail}"
        elif run_id is not None:
            detail = f"pipeline run {run_id}"
        try:
            ended = self.client.schedules.finish(
                fire.id, "succeeded" if ok else "failed", pipeline_run_id=run_id, detail=detail
            )
            with self._lock:
                self._outcomes[fire.id] = ended
                self._ended.append(ended)
                # Kept for the caller to read; bounded, as nobody may ever read them (a server).
                while len(self._outcomes) > _KEPT:
                    del self._outcomes[next(iter(self._outcomes))]
                del self._ended[:-_KEPT]
        except Exception:  # nothing to raise to in a job thread: the log keeps it
            logger.exception("schedule fire %s: recording the job's outcome failed", fire.id)
