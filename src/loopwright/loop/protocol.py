"""The loop as capabilities both backends provide: gate results (``client.gates``), schedules
(``client.schedules``) and loops (``client.loops``).

These are the records, kept in the metadata store (``loop/_gate_records.py``,
``loop/schedules.py``, ``loop/service.py``) or reached over a server (``remote/gates.py``,
``remote/schedules.py``, ``remote/loops.py``). What acts on them runs where it is called, on
any client: ``loop/gates.py`` evaluates a gate, ``loop/scheduler.py`` fires schedules,
``loop/driver.py`` moves iterations through their states.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .entities import (
        Fire,
        FireStatus,
        GateResult,
        GateSpec,
        Iteration,
        IterationState,
        Loop,
        RuleOutcome,
        Schedule,
    )

__all__ = ["Gates", "Loops", "Schedules"]


class Gates(Protocol):
    """Gate results: recorded once, read by the loop, the registry's views and lineage."""

    def record(
        self,
        spec: GateSpec,
        *,
        model: str,
        version: int,
        dataset_version_id: str,
        outcomes: Sequence[RuleOutcome],
        champion_version: int | None = None,
        pipeline_run_id: str | None = None,
    ) -> GateResult:
        """Store a result (``passed`` and ``reason`` follow from the outcomes) and tag the model
        version ``loopwright.gate.<gate>`` = ``passed`` or ``failed``; audited."""
        ...

    def get(self, result_id: str) -> GateResult:
        """One result."""
        ...

    def check_evaluation(
        self,
        spec: GateSpec | dict[str, Any],
        subject: str,
        evaluation_run_id: str,
        *,
        pipeline_run_id: str | None = None,
    ) -> GateResult:
        """Check an evaluation gate (``kind: evaluation``) on a prompt or model version
        (``prompts:/NAME/N``, ``models:/NAME@ALIAS``...) with a recorded evaluation run, where
        the results are stored, and record the result like ``record``; audited."""
        ...

    def results(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        limit: int = 50,
        prompt: str | None = None,
    ) -> builtins.list[GateResult]:
        """Results, newest first, optionally of one model or prompt (and version)."""
        ...


class Schedules(Protocol):
    """Schedules and their fires; ``claim`` is the database lock two schedulers meet at."""

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
        """A new enabled schedule (``trigger`` as :func:`loopwright.loop.triggers.parse_trigger`
        reads it; a time trigger's first due time is computed now, an event trigger's cursor set
        to the newest event now, so past events do not fire)."""
        ...

    def get(self, name: str) -> Schedule: ...

    def list(self, *, target: str | None = None) -> builtins.list[Schedule]:
        """Every schedule (of ``target``), by name."""
        ...

    def set_enabled(self, name: str, enabled: bool) -> Schedule: ...

    def delete(self, name: str) -> None: ...

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
        scheduler took it)."""
        ...

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
        ...

    def fires(self, name: str, *, limit: int = 50) -> builtins.list[Fire]:
        """The schedule's fires, newest first."""
        ...


class Loops(Protocol):
    """Loops and their iterations; every transition is checked, stored and audited."""

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
        """A new active loop for ``deployment`` (``model``: the registered model its primary
        serves, by default). Its non-manual triggers become schedules named ``loop:<name>:<n>``
        targeting it. ``gates``: a spec, a mapping or a YAML file's path, read now and stored.
        With ``require_approval`` the model's approval policy must have a ``traffic`` rule
        (``InvalidInput`` says how to add one). ``metric`` None compares on labelled
        ``accuracy`` (see :class:`~loopwright.loop.entities.Loop`)."""
        ...

    def get(self, name: str) -> Loop: ...

    def list(self) -> builtins.list[Loop]: ...

    def pause(self, name: str) -> Loop:
        """Stop starting iterations (its schedules are disabled); one in flight goes on."""
        ...

    def resume(self, name: str) -> Loop: ...

    def delete(self, name: str) -> None:
        """Remove the loop, its schedules and iterations (the audit log keeps the record);
        refused while an iteration is in flight."""
        ...

    def start_iteration(
        self, name: str, *, trigger: str = "manual", detail: str | None = None
    ) -> Iteration:
        """Open iteration n+1 in state ``triggered``; ``Conflict`` while one is in flight or
        the loop is paused."""
        ...

    def get_iteration(self, iteration_id: str) -> Iteration:
        """One iteration with its transitions (``history``)."""
        ...

    def iterations(
        self, name: str | None = None, *, active: bool | None = None, limit: int = 50
    ) -> builtins.list[Iteration]:
        """Iterations (of one loop), newest first; ``active`` True: only those in flight."""
        ...

    def transition(
        self,
        iteration_id: str,
        *,
        expect: IterationState,
        to: IterationState,
        reason: str | None = None,
        **fields: Any,
    ) -> Iteration:
        """Move the iteration from ``expect`` to ``to`` (an edge of ``TRANSITIONS``) and set
        ``fields`` (``pipeline_run_id``, ``model_version``, ``gate_result_id``,
        ``approval_request_id``, ``canary_revision``, ``canary_started_at``, ``comparison``),
        with an audit event, in one transaction; ``Conflict`` if it is no longer in ``expect``."""
        ...

    def update(self, iteration_id: str, *, expect: IterationState, **fields: Any) -> Iteration:
        """Set ``fields`` without changing state (recording a side effect before the move),
        only while the iteration is in ``expect``."""
        ...

    def lease(self, iteration_id: str, *, owner: str, ttl: timedelta) -> Iteration | None:
        """Take or renew the iteration's lease for ``owner``; None while another owner's lease
        is valid (a driver that dies lets it lapse)."""
        ...
