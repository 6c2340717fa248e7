"""Schedules and their fires on the metadata store: the embedded :class:`Schedules` protocol.

A fire is claimed by inserting its ``schedule_fires`` row; the unique ``(schedule_id,
event_key)`` makes the database the lock two schedulers meet at: the one whose insert lands
starts the job, the other gets None. The schedule's ``next_fire_at``/``cursor`` move in that
same transaction, and only forward, so a slow scheduler cannot wind them back.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> schedules = ScheduleService(open_store(resolve_settings(home="lw-doc-schedules")))
    >>> schedules.create("nightly", target="train:pipeline", trigger="cron:0 3 * * *").enabled
    True
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import AlreadyExists, InvalidInput, NotFound
from ..store import limits
from ..store import schema as t
from ..store.named import Audited, named_row
from .entities import Fire, Schedule
from .triggers import EVENT_KINDS, next_due, parse_trigger

if TYPE_CHECKING:
    from .entities import FireStatus, Trigger

__all__ = ["ScheduleService"]

_s, _f = t.schedules.c, t.schedule_fires.c
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{limits.SCHEDULE_NAME - 1}}}")
_PIPELINE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_LOOP = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.LOOP_NAME - 1}}}")
_FIRE_STATUSES = ("started", "succeeded", "failed", "skipped")
_PARAMS_LIMIT = 64_000


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"schedule name {str(name)[:80]!r} must be 1-{limits.SCHEDULE_NAME} letters, digits, "
            "'.', '_', ':' or '-', starting with a letter or digit (e.g. 'nightly-train')"
        )
    return name


def _check_target(kind: object, target: object) -> None:
    if kind == "pipeline":
        if not isinstance(target, str) or len(target) > limits.PIPELINE_NAME:
            target = None
        if target is None or not _PIPELINE.fullmatch(target):
            raise InvalidInput(
                f"pipeline target {str(target)[:100]!r} must be MODULE:FUNCTION "
                "(e.g. 'churn.train:pipeline'), importable from the schedule's cwd"
            )
    elif kind == "loop":
        if not isinstance(target, str) or not _LOOP.fullmatch(target):
            raise InvalidInput(
                f"loop target {str(target)[:100]!r} must be a loop name (letters, digits, '.', "
                f"'_' or '-', at most {limits.LOOP_NAME})"
            )
    else:
        raise InvalidInput(f"target_kind {kind!r} must be 'pipeline' or 'loop'")


def _check_params(params: object) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) and k for k in params):
        raise InvalidInput(
            f"params {str(params)[:100]!r} must map parameter names to JSON values, e.g. "
            "{'epochs': 10}"
        )
    try:
        text = json.dumps(dict(params), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"params must be JSON values (finite numbers, text, lists): {exc}"
        ) from None
    if len(text) > _PARAMS_LIMIT:
        raise InvalidInput(f"params are {len(text)} characters of JSON; at most {_PARAMS_LIMIT}")
    return dict(params)


def _check_claim(
    event_key: object, due_at: object, owner: object, next_fire_at: object, cursor: object
) -> None:
    limits.check_text("event_key", event_key, limit=200)
    limits.check_text("owner", owner, limit=200)
    if cursor is not None:
        limits.check_text("cursor", cursor, limit=200)
    for what, value in (("due_at", due_at), ("next_fire_at", next_fire_at)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput(f"{what} {value!r} must be UTC milliseconds (an integer)")


def _check_status(status: object) -> None:
    if status not in _FIRE_STATUSES:
        raise InvalidInput(f"fire status {status!r} must be one of: {', '.join(_FIRE_STATUSES)}")


def _schedule(row: Any) -> Schedule:
    return Schedule(
        id=row.id,
        name=row.name,
        target_kind=row.target_kind,
        target=row.target,
        trigger=parse_trigger(row.trigger),
        params=json.loads(row.params_json),
        cwd=row.cwd,
        enabled=bool(row.enabled),
        next_fire_at=row.next_fire_at,
        last_fired_at=row.last_fired_at,
        cursor=row.cursor,
        created_by=row.created_by,
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
    )


def _fire(row: Any, schedule: str) -> Fire:
    return Fire(
        id=row.id,
        schedule=schedule,
        event_key=row.event_key,
        due_at=int(row.due_at),
        fired_at=int(row.fired_at),
        owner=row.owner,
        status=row.status,
        pipeline_run_id=row.pipeline_run_id,
        iteration_id=row.iteration_id,
        detail=row.detail,
        finished_at=row.finished_at,
    )


def _snapshot(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "target_kind": row.target_kind,
        "target": row.target,
        "trigger": row.trigger,
        "params": json.loads(row.params_json),
        "cwd": row.cwd,
        "enabled": bool(row.enabled),
    }


class ScheduleService(Audited):
    """Schedules and fires in the metadata database.

    Args:
        store: the metadata store.
        actor: who changes are recorded as (default: the store's user).
        clock: the time in UTC milliseconds (tests pass a fake one).
    """

    _subject_type = "schedule"

    def create(
        self,
        name: str,
        *,
        target: str,
        trigger: str,
        target_kind: str = "pipeline",
        params: Mapping[str, Any] | None = None,
        cwd: str | None = None,
    ) -> Schedule:
        """A new enabled schedule (``trigger`` as ``parse_trigger`` reads it; a time trigger's
        first due time is computed now, an event trigger's cursor set to the newest event now,
        so past events do not fire). A monitor or dataset an event trigger names must exist."""
        _check_name(name)
        _check_target(target_kind, target)
        parsed = parse_trigger(trigger)
        checked = _check_params(params)
        if cwd is not None:
            limits.check_text("schedule cwd", cwd, limit=4000)
        now, actor, schedule_id = self._clock(), self._actor_name(), new_id()
        row = {
            "id": schedule_id,
            "name": name,
            "target_kind": target_kind,
            "target": target,
            "trigger": parsed.text,
            "params_json": json.dumps(checked, separators=(",", ":")),
            "cwd": cwd,
            "enabled": True,
            "next_fire_at": next_due(parsed, after=now),
            "last_fired_at": None,
            "cursor": None,
            "created_by": actor,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.db.write() as conn:
                if conn.execute(sa.select(_s.id).where(_s.name == name)).first() is not None:
                    raise _exists(name)
                row["cursor"] = _newest_event(conn, parsed)
                conn.execute(t.schedules.insert(), row)
                self._audit(conn, "schedule.create", schedule_id, after=_snapshot(_Row(row)))
        except sa.exc.IntegrityError:
            with self.db.read() as conn:  # two creates of one name: the unique name decides
                if conn.execute(sa.select(_s.id).where(_s.name == name)).first() is None:
                    raise
            raise _exists(name) from None
        return self.get(name)

    def get(self, name: str) -> Schedule:
        """The schedule called ``name``."""
        with self.db.read() as conn:
            return _schedule(self._row(conn, name))

    def list(self, *, target: str | None = None) -> builtins.list[Schedule]:
        """Every schedule (of ``target``), by name."""
        query = sa.select(t.schedules).order_by(_s.name)
        if target is not None:
            query = query.where(_s.target == target)
        with self.db.read() as conn:
            return [_schedule(row) for row in conn.execute(query).all()]

    def set_enabled(self, name: str, enabled: bool) -> Schedule:
        """Enable or disable the schedule. Enabling starts afresh from now: a time trigger's
        next due time is computed from now and an event trigger's cursor moves to the newest
        event, so what happened while it was disabled does not fire."""
        if not isinstance(enabled, bool):
            raise InvalidInput(f"enabled {enabled!r} must be true or false")
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            if bool(row.enabled) != enabled:
                values: dict[str, Any] = {"enabled": enabled, "updated_at": self._clock()}
                if enabled:
                    trigger = parse_trigger(row.trigger)
                    values["next_fire_at"] = next_due(trigger, after=self._clock())
                    if trigger.kind in EVENT_KINDS:
                        values["cursor"] = _newest_event(conn, trigger) or row.cursor
                conn.execute(t.schedules.update().where(_s.id == row.id).values(**values))
                action = "schedule.enable" if enabled else "schedule.disable"
                self._audit(
                    conn, action, row.id, before={"enabled": not enabled},
                    after={"enabled": enabled},
                )  # fmt: skip
        return self.get(name)

    def delete(self, name: str) -> None:
        """Remove the schedule and its fires (the audit log keeps the record)."""
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            fires = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.schedule_fires)
                .where(_f.schedule_id == row.id)
            ).scalar_one()
            conn.execute(t.schedule_fires.delete().where(_f.schedule_id == row.id))
            conn.execute(t.schedules.delete().where(_s.id == row.id))
            self._audit(conn, "schedule.delete", row.id, before={**_snapshot(row), "fires": fires})

    def claim(
        self,
        name: str,
        *,
        event_key: str,
        due_at: int,
        owner: str,
        next_fire_at: int | None = None,
        cursor: str | None = None,
    ) -> Fire | None:
        """Record a fire of ``name`` for ``event_key`` and move the schedule's ``next_fire_at``
        / ``cursor`` in the same transaction; None if that fire exists already (another
        scheduler took it, or the schedule was disabled). Both only move forward."""
        _check_claim(event_key, due_at, owner, next_fire_at, cursor)
        fired_at, fire_id = self._clock(), new_id()
        try:
            with self.db.write() as conn:
                row = self._row(conn, name, lock=True)
                if not row.enabled:
                    return None
                conn.execute(
                    t.schedule_fires.insert(),
                    {
                        "id": fire_id,
                        "schedule_id": row.id,
                        "event_key": event_key,
                        "due_at": due_at,
                        "fired_at": fired_at,
                        "owner": owner,
                        "status": "started",
                        "pipeline_run_id": None,
                        "iteration_id": None,
                        "detail": None,
                        "finished_at": None,
                    },
                )
                values: dict[str, Any] = {"last_fired_at": fired_at, "updated_at": fired_at}
                if next_fire_at is not None and (
                    row.next_fire_at is None or next_fire_at > row.next_fire_at
                ):
                    values["next_fire_at"] = next_fire_at
                if cursor is not None and (row.cursor is None or cursor > row.cursor):
                    values["cursor"] = cursor
                conn.execute(t.schedules.update().where(_s.id == row.id).values(**values))
        except sa.exc.IntegrityError:
            with self.db.read() as conn:  # the unique (schedule, event_key) decided: taken
                schedule = self._row(conn, name)
                taken = conn.execute(
                    sa.select(_f.id).where(_f.schedule_id == schedule.id, _f.event_key == event_key)
                ).first()
            if taken is None:
                raise
            return None
        return self._fire(fire_id)

    def finish(
        self,
        fire_id: str,
        status: FireStatus,
        *,
        pipeline_run_id: str | None = None,
        iteration_id: str | None = None,
        detail: str | None = None,
    ) -> Fire:
        """Record how the fire's job ended (or that it was skipped, and why)."""
        _check_status(status)
        if detail is not None:
            detail = limits.check_text(
                "detail", detail[: limits.PARAM_VALUE], limit=limits.PARAM_VALUE, allow_empty=True
            )
        values: dict[str, Any] = {"status": status, "detail": detail}
        if status != "started":
            values["finished_at"] = self._clock()
        if pipeline_run_id is not None:
            values["pipeline_run_id"] = pipeline_run_id
        if iteration_id is not None:
            values["iteration_id"] = iteration_id
        with self.db.write() as conn:
            if pipeline_run_id is not None:
                known = conn.execute(
                    sa.select(t.pipeline_runs.c.id).where(t.pipeline_runs.c.id == pipeline_run_id)
                ).first()
                if known is None:  # the run is named in the fire's detail instead
                    values["pipeline_run_id"] = None
            done = conn.execute(
                t.schedule_fires.update().where(_f.id == fire_id).values(**values)
            ).rowcount
        if not done:
            raise NotFound(f"schedule fire {fire_id!r} does not exist (its schedule was deleted?)")
        return self._fire(fire_id)

    def fires(self, name: str, *, limit: int = 50) -> builtins.list[Fire]:
        """The schedule's fires, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit {limit!r} must be a whole number from 1 to 10000")
        with self.db.read() as conn:
            row = self._row(conn, name)
            rows = conn.execute(
                sa.select(t.schedule_fires)
                .where(_f.schedule_id == row.id)
                .order_by(_f.fired_at.desc(), _f.id.desc())
                .limit(limit)
            ).all()
        return [_fire(r, row.name) for r in rows]

    # --- private ---------------------------------------------------------------------------

    def _fire(self, fire_id: str) -> Fire:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.schedule_fires, _s.name.label("schedule_name"))
                .join(t.schedules, _s.id == _f.schedule_id)
                .where(_f.id == fire_id)
            ).first()
        if row is None:
            raise NotFound(f"schedule fire {fire_id!r} does not exist")
        return _fire(row, row.schedule_name)

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        hint = "create one with `loopwright schedules create`"
        return named_row(
            conn, t.schedules, _check_name(name), what="schedule", hint=hint, lock=lock
        )


class _Row:
    """A row dict read like a result row (for ``_snapshot`` before the insert)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"schedule {name!r} already exists; delete it first or pick another name")


def _newest_event(conn: sa.Connection, trigger: Trigger) -> str | None:
    """The key of the trigger's newest event now (None: none yet, or not an event trigger);
    NotFound when the monitor or dataset it names does not exist."""
    if trigger.kind == "dataset":
        dataset = conn.execute(
            sa.select(t.datasets.c.id).where(t.datasets.c.name == trigger.spec)
        ).scalar()
        if dataset is None:
            raise NotFound(
                f"trigger {trigger.text!r}: dataset {trigger.spec!r} does not exist; add a first "
                "version (or create it empty) before scheduling on it"
            )
        dv = t.dataset_versions.c
        return conn.execute(
            sa.select(dv.id).where(dv.dataset_id == dataset).order_by(dv.number.desc()).limit(1)
        ).scalar()
    if trigger.kind in EVENT_KINDS:
        monitor = conn.execute(
            sa.select(t.monitors.c.id).where(t.monitors.c.name == trigger.spec)
        ).scalar()
        if monitor is None:
            raise NotFound(
                f"trigger {trigger.text!r}: monitor {trigger.spec!r} does not exist; create it "
                "first (`loopwright monitors create`)"
            )
        a = t.alerts.c
        return conn.execute(sa.select(sa.func.max(a.id)).where(a.monitor_id == monitor)).scalar()
    return None
