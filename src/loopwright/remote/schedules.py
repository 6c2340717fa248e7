"""``RemoteSchedules``: schedules and fires over the server's ``/api/v1/schedules`` (the
``Schedules`` protocol). A claim is decided by the server's database, as embedded, so
schedulers on different machines still fire each event once."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import InvalidInput
from ..loop.entities import Fire, Schedule, Trigger
from ..store import limits
from ._http import Http

if TYPE_CHECKING:
    from ..loop.entities import FireStatus

__all__ = ["RemoteSchedules", "fire", "schedule"]

Json = dict[str, Any]


def schedule(data: Json) -> Schedule:
    trigger = data["trigger"]
    return Schedule(
        id=data["id"],
        name=data["name"],
        target_kind=data["target_kind"],
        target=data["target"],
        trigger=Trigger(trigger["kind"], trigger["spec"], trigger["text"]),
        params=dict(data["params"]),
        cwd=data["cwd"],
        enabled=data["enabled"],
        next_fire_at=data["next_fire_at"],
        last_fired_at=data["last_fired_at"],
        cursor=data["cursor"],
        created_by=data["created_by"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
    )


def fire(data: Json) -> Fire:
    return Fire(
        id=data["id"],
        schedule=data["schedule"],
        event_key=data["event_key"],
        due_at=data["due_at"],
        fired_at=data["fired_at"],
        owner=data["owner"],
        status=data["status"],
        pipeline_run_id=data["pipeline_run_id"],
        iteration_id=data["iteration_id"],
        detail=data["detail"],
        finished_at=data["finished_at"],
    )


def _path(name: str) -> str:
    from ..loop.schedules import _check_name

    return f"/schedules/{quote(_check_name(name), safe='')}"  # refused here, as embedded


class RemoteSchedules:
    """Schedules on a Loopwright server (changes and claims need an editor token; reading, a
    viewer)."""

    def __init__(self, http: Http) -> None:
        self._http = http

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
        """A new enabled schedule (see the embedded ``ScheduleService.create``)."""
        from ..loop.schedules import _check_name, _check_params, _check_target
        from ..loop.triggers import parse_trigger

        # Refused here with the embedded service's words; the server checks again.
        _check_name(name)
        _check_target(target_kind, target)
        parse_trigger(trigger)
        params = _check_params(params)
        body = {
            "name": name,
            "target": target,
            "trigger": trigger,
            "target_kind": target_kind,
            "params": params,
            "cwd": cwd,
        }
        return schedule(self._http.post("/schedules", body))

    def get(self, name: str) -> Schedule:
        return schedule(self._http.get(_path(name)))

    def list(self, *, target: str | None = None) -> builtins.list[Schedule]:
        """Every schedule (of ``target``), by name."""
        return [schedule(s) for s in self._http.get("/schedules", target=target)]

    def set_enabled(self, name: str, enabled: bool) -> Schedule:
        if not isinstance(enabled, bool):
            raise InvalidInput(f"enabled {enabled!r} must be true or false")
        answer = self._http.request("PUT", f"{_path(name)}/enabled", json_body={"enabled": enabled})
        return schedule(answer)

    def delete(self, name: str) -> None:
        self._http.request("DELETE", _path(name))

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
        """Record a fire of ``name`` for ``event_key`` on the server; None if another scheduler
        took it."""
        from ..loop.schedules import _check_claim

        _check_claim(event_key, due_at, owner, next_fire_at, cursor)
        body = {
            "event_key": event_key,
            "due_at": due_at,
            "owner": owner,
            "next_fire_at": next_fire_at,
            "cursor": cursor,
        }
        answer = self._http.post(f"{_path(name)}/claims", body)
        return None if answer["fire"] is None else fire(answer["fire"])

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
        from ..loop.schedules import _check_status

        _check_status(status)
        if not isinstance(fire_id, str) or not fire_id.isalnum() or len(fire_id) > 32:
            raise InvalidInput(f"fire id {str(fire_id)[:40]!r} is not a fire id (32 hex digits)")
        body = {
            "status": status,
            "pipeline_run_id": pipeline_run_id,
            "iteration_id": iteration_id,
            "detail": None if detail is None else detail[: limits.PARAM_VALUE],
        }
        return fire(
            self._http.request("PUT", f"/schedules/fires/{fire_id}/outcome", json_body=body)
        )

    def fires(self, name: str, *, limit: int = 50) -> builtins.list[Fire]:
        """The schedule's fires, newest first."""
        return [fire(f) for f in self._http.get(f"{_path(name)}/fires", limit=limit)]
