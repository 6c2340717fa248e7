"""Assessments on traces: feedback (scores, labels, verdicts) and expectations (expected
answers), from a human, an LLM judge or code; audited like any change people make.

An assessment that ``overrides`` another marks the older one invalid in the same transaction
(MLflow's ``override_feedback``), so a corrected label never counts twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import InvalidInput, NotFound
from ..store import schema as t
from ..store.audit import append_event
from ._rows import assessment_of
from .entities import ASSESSMENT_KINDS, SOURCE_TYPES, Assessment

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["AssessmentStore"]

_MAX_VALUE_CHARS = 65_536
_AUDITED = ("trace_id", "name", "value_json", "valid")


class AssessmentStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _require(self, conn: sa.Connection, trace_id: str) -> None:
        found = conn.execute(
            sa.select(t.traces.c.trace_id).where(t.traces.c.trace_id == trace_id)
        ).first()
        if found is None:
            raise NotFound(f"trace {trace_id!r} does not exist")

    def log_assessment(
        self,
        trace_id: str,
        name: str,
        value: Any,
        *,
        kind: str = "feedback",
        source_type: str = "CODE",
        source_id: str = "",
        rationale: str | None = None,
        error: Mapping[str, Any] | None = None,
        span_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        overrides: str | None = None,
    ) -> Assessment:
        if kind not in ASSESSMENT_KINDS:
            raise InvalidInput(f"assessment {name!r}: kind {kind!r}; kinds: feedback, expectation")
        if source_type not in SOURCE_TYPES:
            raise InvalidInput(
                f"assessment {name!r}: source type {source_type!r}; types: "
                + ", ".join(sorted(SOURCE_TYPES))
            )
        if not name or len(name) > 250:
            raise InvalidInput("an assessment's name must be 1..250 characters")
        now = now_ms()
        row = {
            "id": new_id(),
            "trace_id": trace_id,
            "name": name,
            "kind": kind,
            "source_type": source_type,
            "source_id": source_id[:250],
            "value_json": _json(value, name),
            "rationale": rationale,
            "error_json": None if error is None else json.dumps(dict(error)),
            "span_id": span_id,
            "valid": True,
            "overrides": overrides,
            "metadata_json": json.dumps(dict(metadata or {})),
            "created_by": self._store.actor,
            "created_at": now,
            "updated_at": now,
        }
        a = t.assessments.c
        with self._store.db.write() as conn:
            self._require(conn, trace_id)
            if overrides is not None:
                changed = conn.execute(
                    sa.update(t.assessments)
                    .where(a.id == overrides, a.trace_id == trace_id)
                    .values(valid=False, updated_at=now)
                ).rowcount
                if not changed:
                    raise NotFound(
                        f"trace {trace_id!r} has no assessment {overrides!r} to override"
                    )
            conn.execute(sa.insert(t.assessments).values(**row))
            self._audit(conn, "assessment.create", row, before=None)
        return self.get_assessment(trace_id, str(row["id"]))

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        a = t.assessments.c
        with self._store.db.read() as conn:
            row = conn.execute(
                sa.select(t.assessments).where(a.id == assessment_id, a.trace_id == trace_id)
            ).first()
        if row is None:
            raise NotFound(f"trace {trace_id!r} has no assessment {assessment_id!r}")
        return assessment_of(row)

    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        *,
        name: str | None = None,
        value: Any = ...,
        rationale: str | None = None,
        metadata: Mapping[str, str] | None = None,
        valid: bool | None = None,
    ) -> Assessment:
        before = self.get_assessment(trace_id, assessment_id)
        values: dict[str, Any] = {"updated_at": now_ms()}
        if name is not None:
            values["name"] = name
        if value is not ...:
            values["value_json"] = _json(value, before.name)
        if rationale is not None:
            values["rationale"] = rationale
        if metadata is not None:
            values["metadata_json"] = json.dumps({**before.metadata, **metadata})
        if valid is not None:
            values["valid"] = valid
        a = t.assessments.c
        with self._store.db.write() as conn:
            conn.execute(
                sa.update(t.assessments)
                .where(a.id == assessment_id, a.trace_id == trace_id)
                .values(**values)
            )
            self._audit(
                conn,
                "assessment.update",
                {"id": assessment_id, "trace_id": trace_id, **values},
                before={"name": before.name, "value": before.value},
            )
        return self.get_assessment(trace_id, assessment_id)

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        before = self.get_assessment(trace_id, assessment_id)
        a = t.assessments.c
        with self._store.db.write() as conn:
            conn.execute(sa.delete(t.assessments).where(a.id == assessment_id))
            if before.overrides is not None:
                # The assessment it replaced counts again (as MLflow restores it).
                conn.execute(
                    sa.update(t.assessments).where(a.id == before.overrides).values(valid=True)
                )
            self._audit(
                conn,
                "assessment.delete",
                {"id": assessment_id, "trace_id": trace_id},
                before={"name": before.name, "value": before.value},
            )

    def assessments(self, trace_id: str) -> list[Assessment]:
        a = t.assessments.c
        with self._store.db.read() as conn:
            self._require(conn, trace_id)
            rows = conn.execute(
                sa.select(t.assessments).where(a.trace_id == trace_id).order_by(a.created_at, a.id)
            )
            return [assessment_of(row) for row in rows]

    def assessments_of(self, trace_ids: list[str]) -> dict[str, list[Assessment]]:
        """The assessments of several traces at once (for a page of search results)."""
        a = t.assessments.c
        found: dict[str, list[Assessment]] = {}
        if not trace_ids:
            return found
        with self._store.db.read() as conn:
            query = (
                sa.select(t.assessments)
                .where(a.trace_id.in_(trace_ids))
                .order_by(a.created_at, a.id)
            )
            for row in conn.execute(query):
                found.setdefault(row.trace_id, []).append(assessment_of(row))
        return found

    def _audit(
        self, conn: sa.Connection, action: str, row: Mapping[str, Any], *, before: Any
    ) -> None:
        append_event(
            conn,
            actor=self._store.actor,
            action=action,
            subject_type="assessment",
            subject_id=str(row["id"]),
            before=before,
            after={k: v for k, v in row.items() if k in _AUDITED},
        )


def _json(value: Any, name: str) -> str:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"assessment {name!r}: the value must be JSON ({exc})") from exc
    if len(text) > _MAX_VALUE_CHARS:
        raise InvalidInput(
            f"assessment {name!r}: the value is {len(text):,} characters of JSON; "
            f"the limit is {_MAX_VALUE_CHARS:,}"
        )
    return text
