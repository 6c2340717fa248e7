"""Loops on the metadata store: the embedded :class:`~loopwright.loop.protocol.Loops`.

A loop's settings are one JSON document (``loops.spec_json``); an iteration is a row whose
``state`` only moves along ``TRANSITIONS``, by compare-and-set (``UPDATE ... WHERE state =
:expect``), so two drivers can never both make one move. Each move appends a
``loop_transitions`` row and an audit event in the same transaction. ``in_flight`` holds the
loop's id while an iteration is active: its unique constraint is what allows one in flight.

Example:
    >>> loops = LoopService(store)  # doctest: +SKIP
    >>> loops.create("churn-ct", deployment="churn-api", pipeline="train:churn")  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ..store import limits
from ..store import schema as t
from ..store.named import Audited, named_row
from .entities import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    GateRule,
    GateSpec,
    Iteration,
    Loop,
    Trigger,
)

if TYPE_CHECKING:
    from .entities import IterationState
    from .protocol import Schedules

__all__ = ["LoopService"]

_l, _i, _tr = t.loops.c, t.loop_iterations.c, t.loop_transitions.c
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.LOOP_NAME - 1}}}")
_PIPELINE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
# What transition and update may set, and the column each is stored in.
_FIELDS = {
    "pipeline_run_id": "pipeline_run_id",
    "model_version": "model_version",
    "gate_result_id": "gate_result_id",
    "approval_request_id": "approval_request_id",
    "canary_revision": "canary_revision",
    "canary_started_at": "canary_started_at",
    "comparison": "comparison_json",
}
_MAX_WINDOW = timedelta(days=30)


class LoopService(Audited):
    """Loops and their iterations on the stores.

    Args:
        store: the metadata and blob stores.
        actor: who changes are recorded as (default: the store's user).
        clock: the time in UTC milliseconds (tests pass a fake one); leases use it too.
    """

    _subject_type = "loop"

    # --- loops -------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        deployment: str,
        pipeline: str,
        triggers: Sequence[str] = ("manual",),
        gates: GateSpec | Mapping[str, Any] | str | Path | None = None,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        canary_percent: float = 10.0,
        canary_window: timedelta = timedelta(hours=1),
        metric: str | None = None,
        margin: float = 0.01,
        min_samples: int = 100,
        max_error_rate: float = 0.05,
        max_compare: timedelta = timedelta(hours=24),
        require_approval: bool = True,
        cwd: str | None = None,
        description: str | None = None,
    ) -> Loop:
        """A new active loop for ``deployment``; see the protocol. ``gates`` may be a
        :class:`GateSpec`, a mapping or the path of a YAML file, read now and stored."""
        _check_name(name)
        parsed = _check_triggers(triggers)
        spec = {
            "params": _check_params(params),
            "gates": None if gates is None else _gate_to_json(_load_gates(gates)),
            "triggers": [trigger.text for trigger in parsed],
            "canary_percent": _check_number("canary_percent", canary_percent, 0, 100, open_=True),
            "canary_window_ms": _check_span("canary_window", canary_window),
            "metric": None if metric is None else _check_text("metric", metric, 100),
            "margin": _check_number("margin", margin, 0, math.inf),
            "min_samples": _check_count("min_samples", min_samples),
            "max_error_rate": _check_number("max_error_rate", max_error_rate, 0, 1),
            "max_compare_ms": _check_span("max_compare", max_compare),
            "require_approval": _check_bool("require_approval", require_approval),
            "cwd": None if cwd is None else _check_text("cwd", cwd, 4096),
        }
        if not isinstance(pipeline, str) or not _PIPELINE.fullmatch(pipeline):
            raise InvalidInput(
                f"pipeline {str(pipeline)[:80]!r} must be module:function, the @pipeline the loop "
                "runs (e.g. 'train:churn_pipeline' for churn_pipeline in train.py)"
            )
        limits.check_text("pipeline", pipeline, limit=limits.PIPELINE_NAME)
        if description is not None:
            limits.check_text("loop description", description, limit=limits.REGISTRY_TAG_VALUE)
        with self.db.read() as conn:
            if conn.execute(sa.select(_l.id).where(_l.name == name)).first() is not None:
                raise _exists(name)
        model = self._model_of(deployment, model)
        if spec["require_approval"]:
            self._check_traffic_rule(model)
        now, loop_id = self._clock(), new_id()
        row = {
            "id": loop_id,
            "name": name,
            "deployment": deployment,
            "model": model,
            "pipeline": pipeline,
            "spec_json": json.dumps(spec, separators=(",", ":")),
            "status": "active",
            "description": description,
            "created_by": self._actor_name(),
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.db.write() as conn:
                conn.execute(t.loops.insert(), row)
                self._audit(conn, "loop.create", loop_id, after=_public(row))
        except sa.exc.IntegrityError:
            with self.db.read() as conn:  # two creates of one name: the unique name decides
                if conn.execute(sa.select(_l.id).where(_l.name == name)).first() is None:
                    raise
            raise _exists(name) from None
        created: builtins.list[str] = []
        try:
            for n, trigger in enumerate(p for p in parsed if p.kind != "manual"):
                schedule = f"loop:{name}:{n + 1}"
                self._schedules().create(
                    schedule, target=name, target_kind="loop", trigger=trigger.text
                )
                created.append(schedule)
        except BaseException:
            # A loop without the schedules it was asked for would silently never fire.
            for schedule in created:
                self._schedules().delete(schedule)
            with self.db.write() as conn:
                conn.execute(t.loops.delete().where(_l.id == loop_id))
                self._audit(conn, "loop.delete", loop_id, before=_public(row))
            raise
        return self.get(name)

    def get(self, name: str) -> Loop:
        """The loop called ``name``."""
        with self.db.read() as conn:
            return _loop(self._row(conn, name))

    def list(self) -> builtins.list[Loop]:
        """Every loop, by name."""
        with self.db.read() as conn:
            return [_loop(row) for row in conn.execute(sa.select(t.loops).order_by(_l.name))]

    def pause(self, name: str) -> Loop:
        """Stop starting iterations (its schedules are disabled); one in flight goes on."""
        return self._set_status(name, "paused")

    def resume(self, name: str) -> Loop:
        """Start iterations again (its schedules are enabled)."""
        return self._set_status(name, "active")

    def delete(self, name: str) -> None:
        """Remove the loop, its schedules and iterations (the audit log keeps the record);
        refused while an iteration is in flight."""
        with self.db.read() as conn:
            row = self._row(conn, name)
            self._refuse_in_flight(conn, row, "deleted")
        for schedule in self._loop_schedules(name):
            self._schedules().delete(schedule)
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            self._refuse_in_flight(conn, row, "deleted")
            ids = sa.select(_i.id).where(_i.loop_id == row.id).scalar_subquery()
            conn.execute(t.loop_transitions.delete().where(_tr.iteration_id.in_(ids)))
            conn.execute(t.loop_iterations.delete().where(_i.loop_id == row.id))
            conn.execute(t.loops.delete().where(_l.id == row.id))
            self._audit(conn, "loop.delete", row.id, before=_public(row._asdict()))

    # --- iterations --------------------------------------------------------------------------

    def start_iteration(
        self, name: str, *, trigger: str = "manual", detail: str | None = None
    ) -> Iteration:
        """Open iteration n+1 in state ``triggered``; ``Conflict`` while one is in flight or
        the loop is paused."""
        limits.check_text("trigger", trigger, limit=600)
        if detail is not None:
            limits.check_text("trigger detail", detail, limit=limits.REGISTRY_TAG_VALUE)
        now, iteration_id = self._clock(), new_id()
        try:
            with self.db.write() as conn:
                row = self._row(conn, name, lock=True)
                if row.status != "active":
                    raise Conflict(
                        f"loop {name!r} is paused and starts no iteration; resume it first "
                        f"(loopwright loops resume {name})"
                    )
                self._refuse_in_flight(conn, row, "started again")
                last = conn.execute(
                    sa.select(sa.func.max(_i.number)).where(_i.loop_id == row.id)
                ).scalar_one()
                number = (last or 0) + 1
                conn.execute(
                    t.loop_iterations.insert(),
                    {
                        "id": iteration_id,
                        "loop_id": row.id,
                        "number": number,
                        "state": "triggered",
                        "in_flight": row.id,
                        "trigger": trigger,
                        "trigger_detail": detail,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                self._append_transition(conn, iteration_id, None, "triggered", detail, now)
                after = {"loop": name, "number": number, "state": "triggered", "trigger": trigger}
                self._audit(
                    conn, "loop.iteration.start", iteration_id, after=after, kind="loop_iteration"
                )
        except sa.exc.IntegrityError:
            # Two starts at once on PostgreSQL: the unique in_flight (or number) decides.
            raise Conflict(
                f"loop {name!r} has an iteration in flight already (started concurrently); "
                "wait for it to end"
            ) from None
        return self.get_iteration(iteration_id)

    def get_iteration(self, iteration_id: str) -> Iteration:
        """One iteration with its transitions (``history``)."""
        with self.db.read() as conn:
            return self._iteration(conn, iteration_id)

    def iterations(
        self, name: str | None = None, *, active: bool | None = None, limit: int = 50
    ) -> builtins.list[Iteration]:
        """Iterations (of one loop), newest first; ``active`` True: only those in flight."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit {limit!r} must be a whole number from 1 to 10000")
        query = (
            sa.select(t.loop_iterations, _l.name.label("loop_name"))
            .join(t.loops, _l.id == _i.loop_id)
            .order_by(_i.created_at.desc(), _i.number.desc())
            .limit(limit)
        )
        if active is not None:
            query = query.where(_i.in_flight.is_not(None) if active else _i.in_flight.is_(None))
        with self.db.read() as conn:
            if name is not None:
                query = query.where(_i.loop_id == self._row(conn, name).id)
            rows = conn.execute(query).all()
            histories = self._histories(conn, [row.id for row in rows])
            return [_iteration(row, histories.get(row.id, ())) for row in rows]

    def transition(
        self,
        iteration_id: str,
        *,
        expect: IterationState,
        to: IterationState,
        reason: str | None = None,
        **fields: Any,
    ) -> Iteration:
        """Move the iteration from ``expect`` to ``to`` and set ``fields``, audited, in one
        transaction; ``Conflict`` (naming the state it is in) if it is no longer in ``expect``."""
        if expect not in TRANSITIONS or to not in TRANSITIONS.get(expect, frozenset()):
            allowed = ", ".join(sorted(TRANSITIONS.get(expect, ()))) or "none"
            raise InvalidInput(
                f"an iteration cannot move from {expect!r} to {to!r}; from {expect!r} it may "
                f"move to: {allowed}"
            )
        if reason is not None:
            limits.check_text("reason", reason, limit=limits.REGISTRY_TAG_VALUE)
        now = self._clock()
        with self.db.write() as conn:
            values = self._values(conn, iteration_id, fields)
            values.update(state=to, updated_at=now)
            if reason is not None:
                values["reason"] = reason
            if to in TERMINAL_STATES:
                values.update(in_flight=None, finished_at=now, lease_owner=None, lease_until=None)
            self._compare_and_set(conn, iteration_id, expect, values, f"move to {to!r}")
            self._append_transition(conn, iteration_id, expect, to, reason, now)
            after = {"state": to, **{k: v for k, v in fields.items() if k != "comparison"}}
            if reason is not None:
                after["reason"] = reason
            self._audit(
                conn, "loop.transition", iteration_id,
                before={"state": expect}, after=after, kind="loop_iteration",
            )  # fmt: skip
        return self.get_iteration(iteration_id)

    def update(self, iteration_id: str, *, expect: IterationState, **fields: Any) -> Iteration:
        """Set ``fields`` without changing state, only while the iteration is in ``expect``."""
        if expect not in ACTIVE_STATES:
            raise InvalidInput(
                f"update records what an active state did; {expect!r} is not one of "
                f"{', '.join(sorted(ACTIVE_STATES))}"
            )
        with self.db.write() as conn:
            values = self._values(conn, iteration_id, fields)
            values["updated_at"] = self._clock()
            self._compare_and_set(conn, iteration_id, expect, values, "record its progress")
        return self.get_iteration(iteration_id)

    def lease(self, iteration_id: str, *, owner: str, ttl: timedelta) -> Iteration | None:
        """Take or renew the iteration's lease for ``owner`` until now + ``ttl``; None while
        another owner's lease is valid. A ``ttl`` of zero gives the lease up."""
        limits.check_text("lease owner", owner, limit=200)
        if not isinstance(ttl, timedelta) or ttl < timedelta(0):
            raise InvalidInput(f"ttl {ttl!r} must be a timedelta of zero or more")
        now = self._clock()
        until = now + int(ttl.total_seconds() * 1000)
        free = sa.or_(_i.lease_owner.is_(None), _i.lease_owner == owner, _i.lease_until <= now)
        with self.db.write() as conn:
            done = conn.execute(
                t.loop_iterations.update()
                .where(_i.id == iteration_id, _i.in_flight.is_not(None), free)
                .values(lease_owner=owner, lease_until=until)
            ).rowcount
            iteration = self._iteration(conn, iteration_id)
        return iteration if done else None

    # --- internals ---------------------------------------------------------------------------

    def _set_status(self, name: str, status: str) -> Loop:
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            if row.status != status:
                conn.execute(
                    t.loops.update()
                    .where(_l.id == row.id)
                    .values(status=status, updated_at=self._clock())
                )
                action = "loop.pause" if status == "paused" else "loop.resume"
                self._audit(
                    conn, action, row.id,
                    before={"status": row.status}, after={"status": status},
                )  # fmt: skip
        for schedule in self._loop_schedules(name):
            self._schedules().set_enabled(schedule, status == "active")
        return self.get(name)

    def _loop_schedules(self, name: str) -> builtins.list[str]:
        if all(trigger.kind == "manual" for trigger in self.get(name).triggers):
            return []
        return [
            s.name
            for s in self._schedules().list(target=name)
            if s.target_kind == "loop" and s.name.startswith(f"loop:{name}:")
        ]

    def _values(
        self, conn: sa.Connection, iteration_id: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            raise InvalidInput(
                f"iteration fields {', '.join(unknown)} cannot be set; the fields are "
                f"{', '.join(_FIELDS)}"
            )
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "comparison":
                values["comparison_json"] = None if value is None else json.dumps(value)
            elif key in {"model_version", "canary_revision", "canary_started_at"}:
                values[key] = None if value is None else limits.check_int64(key, value)
            else:
                values[key] = None if value is None else limits.check_text(key, value, limit=64)
        if fields.get("model_version") is not None:
            values["model_version_id"] = self._version_id(conn, iteration_id, values)
        return values

    def _version_id(self, conn: sa.Connection, iteration_id: str, values: Any) -> str | None:
        """The model version row, for lineage (the version may live under another model when a
        pipeline registers elsewhere: then nothing is linked)."""
        mv, rm = t.model_versions.c, t.registered_models.c
        return conn.execute(
            sa.select(mv.id)
            .join(t.registered_models, rm.id == mv.model_id)
            .join(t.loops, _l.model == rm.name)
            .join(t.loop_iterations, _i.loop_id == _l.id)
            .where(_i.id == iteration_id, mv.version == values["model_version"])
        ).scalar()

    def _compare_and_set(
        self, conn: sa.Connection, iteration_id: str, expect: str, values: Any, what: str
    ) -> None:
        done = conn.execute(
            t.loop_iterations.update()
            .where(_i.id == iteration_id, _i.state == expect)
            .values(**values)
        ).rowcount
        if not done:
            state = conn.execute(sa.select(_i.state).where(_i.id == iteration_id)).scalar()
            if state is None:
                raise _no_iteration(iteration_id)
            raise Conflict(
                f"iteration {iteration_id} is in state {state!r}, not {expect!r}: another driver "
                f"moved it; it did not {what} (read it again with get_iteration)"
            )

    def _append_transition(
        self, conn: sa.Connection, iteration_id: str, before: str | None, after: str,
        reason: str | None, at: int,
    ) -> None:  # fmt: skip
        seq = conn.execute(
            sa.select(sa.func.count()).where(_tr.iteration_id == iteration_id)
        ).scalar_one()
        conn.execute(
            t.loop_transitions.insert(),
            {
                "iteration_id": iteration_id,
                "seq": seq,
                "from_state": before,
                "to_state": after,
                "reason": reason,
                "actor": self._actor_name(),
                "at": at,
            },
        )

    def _iteration(self, conn: sa.Connection, iteration_id: str) -> Iteration:
        row = conn.execute(
            sa.select(t.loop_iterations, _l.name.label("loop_name"))
            .join(t.loops, _l.id == _i.loop_id)
            .where(_i.id == iteration_id)
        ).first()
        if row is None:
            raise _no_iteration(iteration_id)
        return _iteration(row, self._history(conn, iteration_id))

    @staticmethod
    def _history(conn: sa.Connection, iteration_id: str) -> tuple[tuple[str, int], ...]:
        return LoopService._histories(conn, [iteration_id]).get(iteration_id, ())

    @staticmethod
    def _histories(
        conn: sa.Connection, iteration_ids: builtins.list[str]
    ) -> dict[str, tuple[tuple[str, int], ...]]:
        """The transitions of each iteration, in order: one query per 500 iterations (a
        scheduler's tick lists every iteration in flight), not one per iteration."""
        found: dict[str, builtins.list[tuple[str, int]]] = {}
        for start in range(0, len(iteration_ids), 500):
            rows = conn.execute(
                sa.select(_tr.iteration_id, _tr.to_state, _tr.at)
                .where(_tr.iteration_id.in_(iteration_ids[start : start + 500]))
                .order_by(_tr.iteration_id, _tr.seq)
            ).all()
            for row in rows:
                found.setdefault(row.iteration_id, []).append((row.to_state, row.at))
        return {key: tuple(value) for key, value in found.items()}

    @staticmethod
    def _refuse_in_flight(conn: sa.Connection, row: Any, what: str) -> None:
        busy = conn.execute(
            sa.select(_i.number, _i.state).where(_i.loop_id == row.id, _i.in_flight.is_not(None))
        ).first()
        if busy is not None:
            raise Conflict(
                f"loop {row.name!r} cannot be {what}: iteration {busy.number} is in flight "
                f"(state {busy.state!r}); wait for it to end (loopwright loops tick {row.name})"
            )

    def _model_of(self, deployment: str, model: str | None) -> str:
        from ..serving._traffic import model_uri_of
        from ..serving.deployments import DeploymentService

        current = DeploymentService(self.store).get(deployment)
        if model is None:
            primary = current.variant("primary")
            if primary is None:
                raise InvalidInput(
                    f"deployment {deployment!r} has no primary variant to take the model from; "
                    "name the model (model=...)"
                )
            model = model_uri_of(primary.model_uri, "primary").name
        assert model is not None
        limits.check_text("model", model, limit=limits.MODEL_NAME)
        return model

    def _check_traffic_rule(self, model: str) -> None:
        from ..registry.service import RegistryService

        policy = RegistryService(self.store).get_model(model).policy
        if policy.rule_for("traffic") is None:
            raise InvalidInput(
                f"the loop asks for approval before the canary, but model {model!r}'s approval "
                "policy has no 'traffic' rule, so nobody would be asked; add one (loopwright "
                f"models policy {model} --require traffic=1:approver, keeping the rules you "
                "want) or create the loop without approval (require_approval=False, "
                "--no-approval)"
            )

    def _schedules(self) -> Schedules:
        from .schedules import ScheduleService

        return ScheduleService(self.store)

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        hint = "create one with loopwright loops create"
        return named_row(conn, t.loops, _check_name(name), what="loop", hint=hint, lock=lock)


# --- rows and entities ---------------------------------------------------------------------


def _loop(row: Any) -> Loop:
    spec = json.loads(row.spec_json)
    return Loop(
        id=row.id,
        name=row.name,
        deployment=row.deployment,
        model=row.model,
        pipeline=row.pipeline,
        params=spec["params"],
        gates=None if spec["gates"] is None else _gate_from_json(spec["gates"]),
        triggers=tuple(_trigger(text) for text in spec["triggers"]),
        canary_percent=spec["canary_percent"],
        canary_window_ms=spec["canary_window_ms"],
        metric=spec["metric"],
        margin=spec["margin"],
        min_samples=spec["min_samples"],
        max_error_rate=spec["max_error_rate"],
        max_compare_ms=spec["max_compare_ms"],
        require_approval=spec["require_approval"],
        status=row.status,
        cwd=spec["cwd"],
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _iteration(row: Any, history: tuple[tuple[str, int], ...]) -> Iteration:
    return Iteration(
        id=row.id,
        loop=row.loop_name,
        number=row.number,
        state=row.state,
        trigger=row.trigger,
        trigger_detail=row.trigger_detail,
        pipeline_run_id=row.pipeline_run_id,
        model_version=row.model_version,
        gate_result_id=row.gate_result_id,
        approval_request_id=row.approval_request_id,
        canary_revision=row.canary_revision,
        canary_started_at=row.canary_started_at,
        comparison=None if row.comparison_json is None else json.loads(row.comparison_json),
        reason=row.reason,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        history=history,
    )


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in {"id", "spec_json"}}
    out["spec"] = json.loads(row["spec_json"])
    return out


def _gate_to_json(spec: GateSpec) -> dict[str, Any]:
    # Rules are stored parsed, so reading a loop back does not need the gate parser.
    data = spec.to_dict()
    data["rules"] = [
        {"namespace": r.namespace, "name": r.name, "op": r.op, "threshold": r.threshold,
         "text": r.text}
        for r in spec.rules
    ]  # fmt: skip
    return data


def _gate_from_json(data: Mapping[str, Any]) -> GateSpec:
    return GateSpec(
        name=data["name"],
        dataset=data["dataset"],
        target=data["target"],
        rules=tuple(GateRule(**rule) for rule in data["rules"]),
        sensitive=tuple(data["sensitive"]),
        champion=data["champion"],
        task=data["task"],
        latency_rows=data["latency_rows"],
    )


def _load_gates(source: GateSpec | Mapping[str, Any] | str | Path) -> GateSpec:
    if isinstance(source, GateSpec):
        return source
    from .gates import load_gate_spec

    return load_gate_spec(source)


def _trigger(text: str) -> Trigger:
    if text == "manual":
        return Trigger("manual", "", "manual")
    from .triggers import parse_trigger

    return parse_trigger(text)


# --- checks --------------------------------------------------------------------------------


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"loop name {str(name)[:80]!r} must be 1-{limits.LOOP_NAME} letters, digits, '.', "
            "'_' or '-', starting with a letter or digit (e.g. 'churn-ct')"
        )
    return name


def _check_triggers(triggers: object) -> tuple[Trigger, ...]:
    if isinstance(triggers, str) or not isinstance(triggers, Sequence) or not triggers:
        raise InvalidInput(
            f"triggers {triggers!r} must be a non-empty list of trigger texts (e.g. "
            "['manual', 'drift:churn-drift', 'cron:0 3 * * 1'])"
        )
    parsed = []
    for text in triggers:
        if not isinstance(text, str):
            raise InvalidInput(f"trigger {text!r} must be a string such as 'interval:6h'")
        parsed.append(_trigger(text.strip()))
    texts = [p.text for p in parsed]
    if len(set(texts)) != len(texts):
        raise InvalidInput(f"triggers {texts} repeat one; give each once")
    return tuple(parsed)


def _check_params(params: object) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InvalidInput(f"params {params!r} must be a mapping of parameter names to values")
    try:
        text = json.dumps(dict(params), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"params must be JSON values (numbers, strings, booleans, lists, mappings): {exc}"
        ) from None
    limits.check_text("params", text, limit=limits.REGISTRY_TAG_VALUE)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _check_number(
    what: str, value: object, low: float, high: float, *, open_: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{what} {value!r} must be a finite number")
    ok = low < value < high if open_ else low <= value <= high
    if not ok:
        bounds = f"between {low:g} and {high:g}" + (" (exclusive)" if open_ else "")
        raise InvalidInput(f"{what} {value!r} must be {bounds}")
    return float(value)


def _check_count(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**9:
        raise InvalidInput(f"{what} {value!r} must be a whole number from 1 to 1000000000")
    return value


def _check_span(what: str, value: object) -> int:
    if not isinstance(value, timedelta) or not timedelta(0) < value <= _MAX_WINDOW:
        raise InvalidInput(
            f"{what} {value!r} must be a timedelta above zero and at most 30 days "
            "(e.g. timedelta(hours=1); the CLI takes 1h, 30m, 2d)"
        )
    return int(value.total_seconds() * 1000)


def _check_bool(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} {value!r} must be True or False")
    return value


def _check_text(what: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} {value!r} must be a non-empty string")
    return limits.check_text(what, value, limit=limit)


def _exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"loop {name!r} already exists; delete it first or pick another name")


def _no_iteration(iteration_id: str) -> NotFound:
    return NotFound(
        f"loop iteration {iteration_id!r} does not exist; loopwright loops history NAME lists "
        "a loop's iterations"
    )
