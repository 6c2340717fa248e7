"""The embedded tracing service: record, read, search, tag and link traces in the store.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> service = TracingService(open_store(resolve_settings(home="lw-doc-tracing")))
    >>> span = Span("a" * 32, "b" * 16, None, "answer", "CHAIN", 1_000_000, 3_000_000)
    >>> service.record([span])
    ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']
    >>> service.get("a" * 32).duration_ms
    2
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import InvalidInput, NotFound
from ..store import schema as t
from ..store.audit import append_event
from ..store.limits import check_int64
from . import _rows
from ._assessments import AssessmentStore
from ._search import count_rows, search_ids, search_rows
from ._write import (
    GATEWAY_USER_KEY,
    RECORDED_BY_KEY,
    SENDER_PREVIEWS_KEY,
    add_links,
    check_writer,
    lock_traces,
    own_metadata,
    write_batch,
)
from .caps import check_request_time, prepare
from .entities import Span, Trace, TraceLinks, TracePage
from .summary import preview

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["TracingService"]

# Who sees a gateway trace (metadata lw.gateway.user: one user's prompts and answers): that user
# and editors and above. A viewer reads others' gateway usage as counts only, so not their text.
_SEES_ALL_GATEWAY_TRACES = frozenset({"editor", "approver", "admin"})

MAX_RESULTS = 1_000
MAX_METRIC_TRACES = 1_000_000  # traces one metrics query reads at the most


class TracingService(AssessmentStore):
    """Traces in the metadata database of ``store``.

    ``reader``: the (user, role) a server reads for. A viewer then finds no gateway trace but
    their own (get, get_many and search alike); without a reader (the embedded API, editors and
    above) every trace is visible.
    """

    def __init__(self, store: Store, *, reader: tuple[str, str] | None = None) -> None:
        super().__init__(store)
        self._reader = reader

    def _hidden_owner(self) -> str | None:
        """The user whose gateway traces alone this reader may see; None: all of them."""
        if self._reader is None or self._reader[1] in _SEES_ALL_GATEWAY_TRACES:
            return None
        return self._reader[0]

    def _visible(self) -> sa.ColumnElement[bool]:
        """A WHERE term over ``traces``: the reader may see the trace."""
        user = self._hidden_owner()
        if user is None:
            return sa.true()
        m = t.trace_metadata.c
        return ~sa.exists().where(
            m.trace_id == t.traces.c.trace_id, m.key == GATEWAY_USER_KEY, m.value != user
        )

    # --- record ------------------------------------------------------------------------------

    def record(
        self,
        spans: Sequence[Span],
        *,
        experiment_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: TraceLinks | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Store ``spans`` (grouped by trace) as the store's actor. Spans of a trace already
        stored are added only by whoever recorded it, and replace stored ones only while it is
        IN_PROGRESS (see ``_write.py``)."""
        return self._record(
            spans, experiment_id=experiment_id, tags=tags, links=links, metadata=metadata
        )

    def _record_gateway(
        self, spans: Sequence[Span], *, links: TraceLinks | None = None, **rest: Any
    ) -> list[str]:
        """:meth:`record` for the LLM gateway (server-only): its traces are never rewritten."""
        return self._record(spans, links=links, gateway=True, **rest)

    def _record(
        self,
        spans: Sequence[Span],
        *,
        experiment_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: TraceLinks | None = None,
        metadata: Mapping[str, str] | None = None,
        gateway: bool = False,
    ) -> list[str]:
        prepared = prepare(spans)
        if not prepared.by_trace:
            return []
        with self._store.db.write() as conn:
            if experiment_id is not None:
                self._check_experiment(conn, experiment_id)
            write_batch(
                conn,
                prepared,
                experiment_id=experiment_id,
                tags=_strings(tags, "tag"),
                links=links,
                metadata=_strings(metadata, "metadata"),
                actor=self._store.actor,
                gateway=gateway,
            )
        return list(prepared.by_trace)

    def record_info(
        self,
        trace_id: str,
        *,
        experiment_id: str | None,
        request_time: int,
        duration_ms: int | None,
        state: str,
        request_preview: str = "",
        response_preview: str = "",
        tags: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Trace:
        """Create or update a trace's summary without spans (MLflow's StartTraceV3 sends the
        info and the spans apart); usage already derived from spans is kept. A stored trace's
        info is changed only by whoever recorded it, never for one the gateway produced."""
        from .._ids import now_ms

        if state not in ("OK", "ERROR", "IN_PROGRESS"):
            raise InvalidInput(f"trace {trace_id}: state {state!r}; states: OK, ERROR, IN_PROGRESS")
        check_request_time(trace_id, request_time)
        now = now_ms()
        c = t.traces.c
        with self._store.db.write() as conn:
            if experiment_id is not None:
                self._check_experiment(conn, experiment_id)
            lock_traces(conn, [trace_id])
            row = conn.execute(sa.select(t.traces).where(c.trace_id == trace_id)).first()
            if row is not None:
                check_writer(conn, trace_id, self._store.actor)
            values: dict[str, Any] = {
                "request_time": request_time,
                "duration_ms": duration_ms,
                "state": state,
                "updated_at": now,
            }
            if experiment_id is not None:
                values["experiment_id"] = experiment_id
            if row is None:
                values.update(
                    trace_id=trace_id,
                    request_preview=preview(request_preview),
                    response_preview=preview(response_preview),
                    span_count=0,
                    created_at=now,
                )
                conn.execute(sa.insert(t.traces).values(**values))
                _put(conn, t.trace_metadata, trace_id, RECORDED_BY_KEY, self._store.actor)
            else:
                # The sender's previews win (MLflow's client writes them as JSON); without
                # them, those derived from the spans stay.
                if request_preview:
                    values["request_preview"] = preview(request_preview)
                if response_preview:
                    values["response_preview"] = preview(response_preview)
                conn.execute(sa.update(t.traces).where(c.trace_id == trace_id).values(**values))
            metadata = own_metadata(metadata or {})
            for table, items in ((t.trace_tags, tags), (t.trace_metadata, metadata)):
                for key, value in _strings(items, "tag").items():
                    _put(conn, table, trace_id, key, value)
            if request_preview or response_preview:
                _put(conn, t.trace_metadata, trace_id, SENDER_PREVIEWS_KEY, "sender")
        return self.get(trace_id, spans=False)

    def _check_experiment(self, conn: sa.Connection, experiment_id: str) -> None:
        found = conn.execute(
            sa.select(t.experiments.c.id).where(t.experiments.c.id == experiment_id)
        ).first()
        if found is None:
            raise NotFound(
                f"experiment {experiment_id!r} does not exist; "
                "create it first or record the traces without an experiment"
            )

    # --- read --------------------------------------------------------------------------------

    def get(self, trace_id: str, *, spans: bool = True) -> Trace:
        with self._store.db.read() as conn:
            found = self._traces(conn, [trace_id], spans=spans)
        if not found:
            raise NotFound(f"trace {trace_id!r} does not exist")
        return found[0]

    def get_many(self, trace_ids: Sequence[str], *, spans: bool = True) -> list[Trace]:
        """The traces that exist among ``trace_ids``, in that order."""
        with self._store.db.read() as conn:
            return self._traces(conn, list(trace_ids), spans=spans)

    def _traces(self, conn: sa.Connection, trace_ids: list[str], *, spans: bool) -> list[Trace]:
        if not trace_ids:
            return []
        rows = {
            row.trace_id: row
            for row in conn.execute(
                sa.select(t.traces).where(t.traces.c.trace_id.in_(trace_ids), self._visible())
            )
        }
        tags = _key_values(conn, t.trace_tags, trace_ids)
        metadata = _key_values(conn, t.trace_metadata, trace_ids)
        links: dict[str, list[tuple[str, str]]] = {}
        for row in conn.execute(
            sa.select(t.trace_links).where(t.trace_links.c.trace_id.in_(trace_ids))
        ):
            links.setdefault(row.trace_id, []).append((row.kind, row.target))
        by_trace: dict[str, list[Span]] = {}
        if spans:
            s = t.spans.c
            query = sa.select(t.spans).where(s.trace_id.in_(trace_ids)).order_by(s.start_ns)
            for row in conn.execute(query):
                by_trace.setdefault(row.trace_id, []).append(_rows.span_of(row))
        return [
            _rows.trace_of(
                rows[trace_id],
                tags=tags.get(trace_id, {}),
                metadata=metadata.get(trace_id, {}),
                links=links.get(trace_id, []),
                spans=tuple(by_trace.get(trace_id, ())),
            )
            for trace_id in trace_ids
            if trace_id in rows
        ]

    def search(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        include_spans: bool = False,
    ) -> TracePage:
        if not 1 <= max_results <= MAX_RESULTS:
            raise InvalidInput(f"max_results is {max_results}; it must be 1..{MAX_RESULTS}")
        offset = _offset(page_token)
        with self._store.db.read() as conn:
            ids = search_rows(
                conn,
                experiment_ids=experiment_ids,
                filter=filter,
                order_by=order_by,
                limit=max_results + 1,
                offset=offset,
                visible=self._visible(),
            )
            traces = self._traces(conn, ids[:max_results], spans=include_spans)
        token = _token(offset + max_results) if len(ids) > max_results else None
        return TracePage(traces, token)

    def correlation(
        self,
        experiment_ids: Sequence[str] | None,
        filter1: str,
        filter2: str,
        base_filter: str | None = None,
    ) -> dict[str, float]:
        """NPMI of two filters over the traces ``base_filter`` keeps (see ``correlation.py``),
        with the counts behind it."""
        from .correlation import npmi

        with self._store.db.read() as conn:

            def count(*filters: str | None) -> int:
                return count_rows(
                    conn, experiment_ids=experiment_ids, filters=[base_filter, *filters]
                )

            total, first, second = count(), count(filter1), count(filter2)
            joint = count(filter1, filter2)
        plain, smoothed = npmi(joint=joint, first=first, second=second, total=total)
        return {
            "npmi": plain,
            "npmi_smoothed": smoothed,
            "filter1_count": first,
            "filter2_count": second,
            "joint_count": joint,
            "total_count": total,
        }

    def metrics(
        self,
        experiment_ids: Sequence[str] | None,
        metric: str,
        aggregations: Sequence[tuple[str, float | None]],
        dimensions: Sequence[str] = (),
        filters: Sequence[str] = (),
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """Trace aggregates (``metrics.py``) over the traces matching every filter."""
        from .metrics import aggregate

        c = t.traces.c
        name = (
            sa.select(t.trace_tags.c.value)
            .where(t.trace_tags.c.trace_id == c.trace_id, t.trace_tags.c.key == "mlflow.traceName")
            .scalar_subquery()
        )
        query = sa.select(
            c.state, name.label("name"), c.duration_ms, c.input_tokens, c.output_tokens
        )
        with self._store.db.read() as conn:
            ids = search_ids(conn, experiment_ids, filters, start_ms, end_ms)
            query = query.where(ids)
            rows = [
                {
                    "trace_status": row.state,
                    "trace_name": row.name,
                    "latency": row.duration_ms,
                    "input_tokens": row.input_tokens,
                    "output_tokens": row.output_tokens,
                    "total_tokens": None
                    if row.input_tokens is None and row.output_tokens is None
                    else (row.input_tokens or 0) + (row.output_tokens or 0),
                    "trace_count": 1,
                }
                for row in conn.execute(query.limit(MAX_METRIC_TRACES))
            ]
        return aggregate(rows, metric, aggregations, dimensions)

    # --- change ------------------------------------------------------------------------------

    def set_tag(self, trace_id: str, key: str, value: str) -> None:
        tags = _strings({key: value}, "tag")
        with self._store.db.write() as conn:
            self._require(conn, trace_id)
            _put(conn, t.trace_tags, trace_id, key, tags[key])
            append_event(
                conn,
                actor=self._store.actor,
                action="trace.tag.set",
                subject_type="trace",
                subject_id=trace_id,
                after={key: value},
            )

    def delete_tag(self, trace_id: str, key: str) -> None:
        c = t.trace_tags.c
        with self._store.db.write() as conn:
            self._require(conn, trace_id)
            gone = conn.execute(
                sa.delete(t.trace_tags).where(c.trace_id == trace_id, c.key == key)
            ).rowcount
            if not gone:
                raise NotFound(f"trace {trace_id!r} has no tag {key!r}")
            append_event(
                conn,
                actor=self._store.actor,
                action="trace.tag.delete",
                subject_type="trace",
                subject_id=trace_id,
                before={"key": key},
            )

    def link(self, trace_ids: Sequence[str], links: TraceLinks) -> None:
        with self._store.db.write() as conn:
            for trace_id in trace_ids:
                self._require(conn, trace_id)
            add_links(conn, list(trace_ids), links)

    def delete(
        self,
        *,
        trace_ids: Sequence[str] | None = None,
        experiment_id: str | None = None,
        older_than_ms: int | None = None,
    ) -> int:
        """Delete the traces matching every condition given (at least one)."""
        c = t.traces.c
        where: list[sa.ColumnElement[bool]] = []
        if trace_ids is not None:
            where.append(c.trace_id.in_(list(trace_ids)))
        if experiment_id is not None:
            where.append(c.experiment_id == experiment_id)
        if older_than_ms is not None:
            where.append(c.request_time < check_int64("older_than_ms", older_than_ms))
        if not where:
            raise InvalidInput("delete needs trace_ids, experiment_id or older_than_ms")
        with self._store.db.write() as conn:
            doomed = [row[0] for row in conn.execute(sa.select(c.trace_id).where(*where))]
            for start in range(0, len(doomed), 500):
                chunk = doomed[start : start + 500]
                # Children first: SQLite enforces the cascade only with foreign keys on.
                for table in (
                    t.spans,
                    t.trace_tags,
                    t.trace_metadata,
                    t.trace_links,
                    t.assessments,
                ):
                    conn.execute(sa.delete(table).where(table.c.trace_id.in_(chunk)))
                conn.execute(sa.delete(t.traces).where(c.trace_id.in_(chunk)))
            if doomed:
                append_event(
                    conn,
                    actor=self._store.actor,
                    action="trace.delete",
                    subject_type="trace",
                    subject_id=doomed[0] if len(doomed) == 1 else f"{len(doomed)} traces",
                    before={"trace_ids": doomed[:100], "count": len(doomed)},
                )
        return len(doomed)


def _strings(values: Mapping[str, str] | None, what: str) -> dict[str, str]:
    if not values:
        return {}
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput(f"{what} {key!r}: keys and values must be strings")
        if not key or len(key) > 250:
            raise InvalidInput(f"{what} key {key[:50]!r}: 1..250 characters")
    return dict(values)


def _put(conn: sa.Connection, table: sa.Table, trace_id: str, key: str, value: str) -> None:
    c = table.c
    changed = conn.execute(
        sa.update(table).where(c.trace_id == trace_id, c.key == key).values(value=value)
    ).rowcount
    if not changed:
        conn.execute(sa.insert(table).values(trace_id=trace_id, key=key, value=value))


def _key_values(
    conn: sa.Connection, table: sa.Table, trace_ids: list[str]
) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for row in conn.execute(sa.select(table).where(table.c.trace_id.in_(trace_ids))):
        out.setdefault(row.trace_id, {})[row.key] = row.value
    return out


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"page token {token[:40]!r} is not one this server issued") from exc
    if offset < 0:
        raise InvalidInput(f"page token {token[:40]!r} is not one this server issued")
    return offset


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()
