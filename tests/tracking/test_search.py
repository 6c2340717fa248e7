"""Run search: MLflow filter syntax, ordering and paging, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import getpass
import json
import math
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.store import schema as t
from loopwright.store.filters import MAX_ORDER_KEYS
from loopwright.store.home import open_store
from loopwright.tracking import RunStatus, TrackingService
from loopwright.tracking._filter import ATTRIBUTES, NUMERIC_ATTRIBUTES, NUMERIC_OPS, STRING_OPS
from loopwright.tracking.entities import STALE_AFTER_MS
from loopwright.tracking.search import (
    INDEXED_VALUE_BYTES,
    MAX_RESULTS_LIMIT,
    Clause,
    RunPage,
    parse_filter,
    search_run_ids,
)


@pytest.fixture
def tracking(tmp_path: Path, db_uri: str) -> Iterator[TrackingService]:
    store = open_store(resolve_settings(home=tmp_path / "h", db_uri=db_uri))
    service = TrackingService(store)
    try:
        yield service
    finally:
        service.close()
        store.close()


def _search(tracking: TrackingService, **kwargs: Any) -> RunPage:
    tracking.flush()  # metrics are written in the background; readers flush first
    with tracking.db.read() as conn:
        return search_run_ids(conn, **kwargs)


def _set_run(tracking: TrackingService, run_id: str, **values: Any) -> None:
    with tracking.db.write() as conn:
        conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))


@dataclass
class Catalog:
    """Five runs with known values; ``ids`` maps run names to ids."""

    tracking: TrackingService
    ids: dict[str, str]

    def names(self, **kwargs: Any) -> list[str]:
        by_id = {run_id: name for name, run_id in self.ids.items()}
        return [by_id[run_id] for run_id in _search(self.tracking, **kwargs).run_ids]


_CATALOG: dict[str, dict[str, Any]] = {
    "r1": {
        "params": {"model": "rf", "lr": "0.1", "a b": "spaced", "lr.decay": "0.9"},
        "metrics": {"acc": 0.9, "loss": 0.3, "my metric": 5},
        "tags": {"team": "Alpha", "env": "prod"},
        "status": RunStatus.FINISHED,
    },
    "r2": {
        "params": {"model": "RF", "lr": "0.01"},
        "metrics": {"acc": 0.8, "loss": math.nan},
        "tags": {"team": "alpha", "env": "dev"},
        "status": RunStatus.FAILED,
    },
    "r3": {
        "params": {"model": "xgb", "lr": "0.1", "pattern": "a*b"},
        "metrics": {"acc": 0.95},
        "tags": {"team": "ALPHA_x"},
        "status": None,
    },
    "r4": {
        "params": {"model": "a%b"},
        "metrics": {"acc": 0.5, "loss": 0.0},
        "tags": {"team": "beta"},
        "status": RunStatus.KILLED,
    },
    "r5": {"params": {"pattern": "axxb"}, "status": RunStatus.FINISHED, "experiment": "other"},
}


@pytest.fixture
def catalog(tracking: TrackingService) -> Catalog:
    ids = {}
    for n, (name, spec) in enumerate(_CATALOG.items(), start=1):
        run = tracking.create_run(experiment=spec.get("experiment", "main"), name=name)
        tracking.log_params(run.id, spec["params"])
        if spec.get("metrics"):
            tracking.log_metrics(run.id, spec["metrics"])
        if spec.get("tags"):
            tracking.set_tags(run.id, spec["tags"])
        if spec["status"] is not None:
            tracking.end_run(run.id, spec["status"])
        end = None if spec["status"] is None else n * 1000 + 500
        _set_run(tracking, run.id, start_time=n * 1000, end_time=end)
        ids[name] = run.id
    return Catalog(tracking, ids)


ALL = {"r1", "r2", "r3", "r4", "r5"}

FILTER_CASES: list[tuple[str, set[str]]] = [
    ("", ALL),
    ("   ", ALL),
    # metrics: every numeric operator; runs without the metric never match
    ("metrics.acc > 0.85", {"r1", "r3"}),
    ("metrics.acc >= 0.9", {"r1", "r3"}),
    ("metrics.acc < 0.9", {"r2", "r4"}),
    ("metrics.acc <= 0.8", {"r2", "r4"}),
    ("metrics.acc = 0.9", {"r1"}),
    ("metrics.acc != 0.9", {"r2", "r3", "r4"}),
    ("metric.acc >= 9e-1", {"r1", "r3"}),
    ("metrics.acc > -1", {"r1", "r2", "r3", "r4"}),
    # NaN is stored as 0 but matches no comparison
    ("metrics.loss = 0", {"r4"}),
    ("metrics.loss <= 0", {"r4"}),
    ("metrics.loss != 0.3", {"r4"}),
    ("metrics.loss > -1e9", {"r1", "r4"}),
    # quoted keys
    ("metrics.`my metric` = 5", {"r1"}),
    ('metrics."my metric" > 4.5', {"r1"}),
    ("metrics.'my metric' >= 5", {"r1"}),
    ("params.`a b` = 'spaced'", {"r1"}),
    ('params."a b" = "spaced"', {"r1"}),
    ("params.lr.decay = '0.9'", {"r1"}),
    ("`params`.`lr.decay` = '0.9'", {"r1"}),
    # params: string operators, case-sensitive except ILIKE
    ("params.model = 'rf'", {"r1"}),
    ("params.model = 'RF'", {"r2"}),
    ("params.model != 'rf'", {"r2", "r3", "r4"}),
    ("params.model LIKE 'r%'", {"r1"}),
    ("params.model like 'R%'", {"r2"}),
    ("params.model ILIKE 'r%'", {"r1", "r2"}),
    ("params.model LIKE '_f'", {"r1"}),
    ("params.model LIKE '%'", {"r1", "r2", "r3", "r4"}),
    ("params.model LIKE 'a%b'", {"r4"}),
    ("params.model LIKE 'a\\%b'", {"r4"}),
    ("params.model LIKE 'a\\%'", set()),
    ("params.pattern LIKE 'a*b'", {"r3"}),
    ("params.pattern LIKE 'a?b'", set()),
    ("params.pattern LIKE 'a__b'", {"r5"}),
    ("params.pattern ILIKE 'A*B'", {"r3"}),
    ("params.model IN ('rf', 'xgb')", {"r1", "r3"}),
    ("params.model in ('rf')", {"r1"}),
    ("params.model NOT IN ('rf', 'xgb')", {"r2", "r4"}),
    ("params.model not  in ('nothing')", {"r1", "r2", "r3", "r4"}),
    ("param.lr = '0.1'", {"r1", "r3"}),
    ('parameters.lr = "0.1"', {"r1", "r3"}),
    ("params.model = 'r%'", set()),
    ("params.missing = 'x'", set()),
    # tags
    ("tags.team = 'alpha'", {"r2"}),
    ("tag.team ILIKE 'ALPHA%'", {"r1", "r2", "r3"}),
    ("tags.team LIKE 'alpha%'", {"r2"}),
    ("tags.team LIKE '%\\_x'", {"r3"}),
    ("tags.env != 'prod'", {"r2"}),
    ("tags.team IN ('beta', 'gamma')", {"r4"}),
    ("tags.team NOT IN ('beta')", {"r1", "r2", "r3"}),
    # attributes
    ("attributes.status = 'FINISHED'", {"r1", "r5"}),
    ("status = 'FAILED'", {"r2"}),
    ("attribute.status IN ('KILLED', 'FAILED')", {"r2", "r4"}),
    ("attr.status != 'RUNNING'", {"r1", "r2", "r4", "r5"}),
    ("attributes.status = 'finished'", set()),
    ("attributes.run_name = 'r3'", {"r3"}),
    ("run_name LIKE 'r%'", ALL),
    ("run.`Run Name` ILIKE 'R1'", {"r1"}),
    ("run_name NOT IN ('r1', 'r2')", {"r3", "r4", "r5"}),
    ("attributes.start_time > 2500", {"r3", "r4", "r5"}),
    ("attributes.created <= 2000", {"r1", "r2"}),
    ("Created = 3000", {"r3"}),
    ("attributes.start_time != 3000", {"r1", "r2", "r4", "r5"}),
    ("attributes.end_time > 0", {"r1", "r2", "r4", "r5"}),
    ("end_time < 2600", {"r1", "r2"}),
    ("attributes.start_time < 99999999999999999999999", ALL),
    (f"attributes.user_id = '{getpass.getuser()}'", ALL),
    # combinations
    ("metrics.acc > 0.7 and params.lr = '0.1'", {"r1", "r3"}),
    ("metrics.acc > 0.7 AND params.lr = '0.1' aNd tags.team = 'ALPHA_x'", {"r3"}),
    ("params.model = 'rf' and params.model = 'RF'", set()),
    ("metrics.acc>0.7 and status='FINISHED'", {"r1"}),
    ("\tmetrics.acc > 0.7\nand\nparams.lr = '0.1'  ", {"r1", "r3"}),
    # injection-looking values are plain strings
    ("params.model = 'x'' OR 1=1 --'", set()),
    ("params.model = 'rf'' OR ''1''=''1'", set()),
    ('params.model = "rf\\" OR 1=1; DROP TABLE runs; --"', set()),
    ("params.`model; DROP TABLE runs; --` = 'x'", set()),
    ("params.model IN ('x'') OR (''1''=''1')", set()),
    ("tags.team LIKE '%'' OR 1=1 --'", set()),
]


def test_each_filter_selects_exactly_the_expected_runs(catalog: Catalog) -> None:
    failures = []
    for filter_string, expected in FILTER_CASES:
        found = set(catalog.names(filter_string=filter_string))
        if found != expected:
            failures.append(f"{filter_string!r}: expected {sorted(expected)}, got {sorted(found)}")
    assert not failures, "\n".join(failures)
    with catalog.tracking.db.read() as conn:  # the injection attempts left the tables alone
        assert conn.execute(sa.select(sa.func.count()).select_from(t.runs)).scalar() == 5


def test_filters_on_run_ids_and_experiments(catalog: Catalog) -> None:
    ids = catalog.ids
    assert catalog.names(filter_string=f"attributes.run_id = '{ids['r2']}'") == ["r2"]
    in_list = f"run_id IN ('{ids['r1']}', '{ids['r4']}', 'nope')"
    assert catalog.names(filter_string=in_list) == ["r4", "r1"]
    other = catalog.tracking.get_experiment_by_name("other").id
    main = catalog.tracking.get_experiment_by_name("main").id
    assert catalog.names(filter_string=f"attributes.experiment_id = '{other}'") == ["r5"]
    assert catalog.names(experiment_ids=[other]) == ["r5"]
    assert catalog.names(experiment_ids=[main, other]) == ["r5", "r4", "r3", "r2", "r1"]
    assert catalog.names(experiment_ids=[main], filter_string="status = 'FINISHED'") == ["r1"]
    assert catalog.names(experiment_ids=[]) == []
    with pytest.raises(InvalidInput, match="list of ids"):
        catalog.names(experiment_ids=main)


# --- ordering ------------------------------------------------------------------------------------

ORDER_CASES: list[tuple[list[str], list[str]]] = [
    ([], ["r5", "r4", "r3", "r2", "r1"]),
    (["metrics.acc DESC"], ["r3", "r1", "r2", "r4", "r5"]),
    (["metrics.acc"], ["r4", "r2", "r1", "r3", "r5"]),
    (["metric.acc asc"], ["r4", "r2", "r1", "r3", "r5"]),
    # values, then NaN, then runs without the metric, in both directions
    (["metrics.loss ASC"], ["r4", "r1", "r2", "r5", "r3"]),
    (["metrics.loss DESC"], ["r1", "r4", "r2", "r5", "r3"]),
    # strings sort by code point on both databases ("RF" < "a%b" < "rf")
    (["params.model"], ["r2", "r4", "r1", "r3", "r5"]),
    (["params.`model` DESC"], ["r3", "r1", "r4", "r2", "r5"]),
    (["attributes.start_time ASC"], ["r1", "r2", "r3", "r4", "r5"]),
    (["created DESC"], ["r5", "r4", "r3", "r2", "r1"]),
    (["attributes.end_time DESC"], ["r5", "r4", "r2", "r1", "r3"]),
    (["attributes.end_time"], ["r1", "r2", "r4", "r5", "r3"]),
    (["attributes.run_name DESC"], ["r5", "r4", "r3", "r2", "r1"]),
    (["status"], ["r2", "r5", "r1", "r4", "r3"]),
    (["tags.env", "metrics.acc DESC"], ["r2", "r1", "r3", "r4", "r5"]),
    (["tags.team DESC", "params.lr"], ["r4", "r2", "r1", "r3", "r5"]),
]


def test_order_by_matches_mlflow(catalog: Catalog) -> None:
    failures = []
    for order_by, expected in ORDER_CASES:
        found = catalog.names(order_by=order_by)
        if found != expected:
            failures.append(f"{order_by}: expected {expected}, got {found}")
    assert not failures, "\n".join(failures)
    assert catalog.names(filter_string="metrics.acc > 0.7", order_by=["metrics.acc"]) == [
        "r2",
        "r1",
        "r3",
    ]


def test_the_most_order_by_keys_allowed_run(catalog: Catalog) -> None:
    """Each key is an outer join; the bound sits below SQLite's 64 tables per join."""
    order_by = [f"params.p{n}" for n in range(MAX_ORDER_KEYS - 1)] + ["metrics.acc DESC"]
    assert catalog.names(order_by=order_by) == ["r3", "r1", "r2", "r4", "r5"]


def test_equal_start_times_fall_back_to_run_id(tracking: TrackingService) -> None:
    ids = [tracking.create_run(name=f"tie-{n}").id for n in range(4)]
    for run_id in ids:
        _set_run(tracking, run_id, start_time=42)
    assert _search(tracking).run_ids == sorted(ids)
    assert _search(tracking, order_by=["attributes.start_time DESC"]).run_ids == sorted(ids)


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["metrics.acc", "metric.acc DESC"], "names metrics.acc twice"),
        (["metrics.acc DOWN"], "expected ASC, DESC"),
        (["metrics.acc DESC extra"], "expected the end of the order_by item"),
        (["foo.acc"], "unknown entity 'foo'"),
        (["attributes.bogus"], "unknown attribute 'bogus'"),
        ([""], "expected a column"),
        ("metrics.acc", "must be a list"),
        ([f"params.p{n}" for n in range(MAX_ORDER_KEYS + 1)], f"the limit is {MAX_ORDER_KEYS}"),
    ],
)
def test_bad_order_by_is_refused(catalog: Catalog, order_by: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        catalog.names(order_by=order_by)


def test_a_run_whose_heartbeat_stopped_is_stale_in_status_and_search(
    tracking: TrackingService,
) -> None:
    zombie = tracking.create_run(name="zombie").id
    live = tracking.create_run(name="live").id
    done = tracking.create_run(name="done").id
    tracking.end_run(done)
    long_ago = int(time.time() * 1000) - STALE_AFTER_MS - 60_000
    _set_run(tracking, zombie, heartbeat_at=long_ago)
    _set_run(tracking, done, heartbeat_at=long_ago)  # ended runs are never stale
    assert tracking.get_run(zombie).status is RunStatus.STALE
    assert tracking.get_run(live).status is RunStatus.RUNNING
    assert tracking.get_run(done).status is RunStatus.FINISHED

    def found(filter_string: str, **kwargs: Any) -> set[str]:
        return set(_search(tracking, filter_string=filter_string, **kwargs).run_ids)

    assert found("attributes.status = 'STALE'") == {zombie}
    assert found("status = 'RUNNING'") == {live}
    assert found("status != 'STALE'") == {live, done}
    assert found("status IN ('STALE', 'FINISHED')") == {zombie, done}
    assert found("status LIKE 'ST%'") == {zombie}
    assert _search(tracking, order_by=["status DESC"]).run_ids == [zombie, live, done]
    # MLflow's API has no STALE status: there the stored RUNNING is what search sees.
    assert found("status = 'RUNNING'", derive_stale=False) == {zombie, live}
    assert found("status = 'STALE'", derive_stale=False) == set()
    with pytest.raises(InvalidInput, match="never set"):
        tracking.update_run(zombie, status=RunStatus.STALE)
    tracking.end_run(zombie, RunStatus.KILLED)  # a stale run can still be ended
    assert tracking.get_run(zombie).status is RunStatus.KILLED


# --- paging, view types and arguments -------------------------------------------------------------


def test_pages_cover_every_run_exactly_once(tracking: TrackingService) -> None:
    for n in range(23):
        run = tracking.create_run(name=f"p{n}")
        tracking.log_metrics(run.id, {"m": n % 7})
        _set_run(tracking, run.id, start_time=1000 + n // 3)
    for kwargs in ({}, {"order_by": ["metrics.m DESC"]}, {"filter_string": "metrics.m > 1"}):
        everything = _search(tracking, **kwargs).run_ids
        for size in (1, 5, 7, len(everything), 50):
            pages, token = [], None
            while True:
                page = _search(tracking, max_results=size, page_token=token, **kwargs)
                assert len(page.run_ids) <= size
                pages.append(page.run_ids)
                token = page.next_page_token
                if token is None:
                    break
            assert [run_id for page_ids in pages for run_id in page_ids] == everything
            assert len(pages) == max(1, -(-len(everything) // size))


def test_tampered_or_foreign_page_tokens_are_refused(tracking: TrackingService) -> None:
    for n in range(3):
        tracking.create_run(name=f"t{n}")
    token = _search(tracking, max_results=1).next_page_token
    assert token is not None
    decoded = json.loads(base64.urlsafe_b64decode(token))

    def encode(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()

    tampered = [
        "not base64!",
        "bm90IGpzb24=",  # "not json"
        encode([1]),
        encode({"offset": -1, "search": decoded["search"]}),
        encode({"offset": "1", "search": decoded["search"]}),
        encode({"offset": True, "search": decoded["search"]}),
        encode({"offset": 1}),
        encode({**decoded, "extra": 1}),
        token[:-2],
        "é",
    ]
    for bad in tampered:
        with pytest.raises(InvalidInput, match="page_token is not a token this search returned"):
            _search(tracking, max_results=1, page_token=bad)
    with pytest.raises(InvalidInput, match="other arguments"):
        _search(tracking, max_results=1, page_token=token, filter_string="status = 'RUNNING'")
    assert len(_search(tracking, max_results=1, page_token=token).run_ids) == 1
    assert len(_search(tracking, max_results=1, page_token="").run_ids) == 1


def test_run_view_types(tracking: TrackingService) -> None:
    alive = tracking.create_run(name="alive").id
    gone = tracking.create_run(name="gone").id
    _set_run(tracking, gone, lifecycle_stage="deleted")
    assert _search(tracking).run_ids == [alive]
    assert _search(tracking, run_view_type="ACTIVE_ONLY").run_ids == [alive]
    assert _search(tracking, run_view_type="DELETED_ONLY").run_ids == [gone]
    assert set(_search(tracking, run_view_type="ALL").run_ids) == {alive, gone}
    with pytest.raises(InvalidInput, match="run_view_type 'SOME'"):
        _search(tracking, run_view_type="SOME")


@pytest.mark.parametrize("max_results", [0, -1, MAX_RESULTS_LIMIT + 1, True, "10", 2.5])
def test_bad_max_results_are_refused(tracking: TrackingService, max_results: Any) -> None:
    with pytest.raises(InvalidInput, match="max_results"):
        _search(tracking, max_results=max_results)


def test_long_values_are_stored_and_found(tracking: TrackingService) -> None:
    """PostgreSQL indexes only short values; longer ones still write and match (by a scan)."""
    long_value = secrets.token_hex(2500)  # over the indexed size, within the param limit
    run = tracking.create_run(name="long")
    tracking.log_params(run.id, {"blob": long_value, "short": "s"})
    tracking.set_tags(run.id, {"blob": long_value})
    for filter_string in (
        f"params.blob = '{long_value}'",
        f"tags.blob IN ('x', '{long_value}')",
        f"params.blob LIKE '{long_value[:10]}%'",
        "params.short = 's'",
    ):
        assert _search(tracking, filter_string=filter_string).run_ids == [run.id]


def test_search_uses_the_covering_indexes(tracking: TrackingService) -> None:
    run = tracking.create_run(name="indexed")
    tracking.log_params(run.id, {"p": "x"})
    tracking.log_metrics(run.id, {"m": 1.0})
    tracking.set_tags(run.id, {"t": "y"})
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT RUNS.ID"):
            statements.append((statement, parameters))

    sa.event.listen(tracking.db.engine, "before_cursor_execute", capture)
    try:
        found = _search(
            tracking, filter_string="metrics.m > 0.5 and params.p = 'x' and tags.t = 'y'"
        )
    finally:
        sa.event.remove(tracking.db.engine, "before_cursor_execute", capture)
    assert found.run_ids == [run.id]
    ((statement, parameters),) = statements
    with tracking.db.read() as conn:
        if tracking.db.dialect == "sqlite":
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
        else:  # the tables are tiny: forbid sequential scans to see which indexes qualify
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            plan = " ".join(str(row[0]) for row in rows)
    # PostgreSQL may pick either metrics index; the partial ones must qualify there too.
    metrics_index = "ix_latest_metrics_key_value"
    if tracking.db.dialect == "sqlite":
        metrics_index += "_is_nan_run_id"
    for index in ("ix_params_key_value_run_id", "ix_run_tags_key_value_run_id", metrics_index):
        assert index in plan, plan


def test_partial_index_predicate_matches_the_search_constant() -> None:
    for table in (t.params, t.run_tags):
        (index,) = [ix for ix in table.indexes if ix.name == f"ix_{table.name}_key_value_run_id"]
        where = index.dialect_options["postgresql"]["where"]
        assert str(where) == f"octet_length(value) <= {INDEXED_VALUE_BYTES}"


# --- the parser ----------------------------------------------------------------------------------


def test_parse_filter_returns_clauses() -> None:
    assert parse_filter("metrics.`val loss` <= -1.5e-3 AND params.opt IN ('adam', \"sgd\")") == [
        Clause("metrics", "val loss", "<=", -1.5e-3),
        Clause("params", "opt", "IN", ("adam", "sgd")),
    ]
    assert parse_filter("created > 5 and `Run name` = 'a''b' and tags.x = 'c\\'d\\\\'") == [
        Clause("attributes", "start_time", ">", 5),
        Clause("attributes", "run_name", "=", "a'b"),
        Clause("tags", "x", "=", "c'd\\"),
    ]
    assert parse_filter("") == []


MALFORMED: list[tuple[str, str, int]] = [
    ("foo.x = 'a'", "unknown entity 'foo'", 0),
    ("datasets.name = 'a'", "unknown entity 'datasets'", 0),
    ("metrics.m > 'x'", "expected a number for metrics.m", 12),
    ("metrics.m > 1x", "expected a number for metrics.m", 12),
    ("metrics.m >", "expected a number for metrics.m", 11),
    ("attributes.start_time > '2024'", "expected a number for attributes.start_time", 24),
    ("params.a > 'x'", "operator > does not apply to params.a (a string)", 9),
    ("attributes.status >= 'x'", "operator >= does not apply to attributes.status", 18),
    ("metrics.m IN ('1')", "operator IN does not apply to metrics.m (a number)", 10),
    ("metrics.m LIKE 1", "operator LIKE does not apply", 10),
    ("params.a = x", "expected a quoted string for params.a", 11),
    ("params.a = 1", "expected a quoted string for params.a", 11),
    ("params.a = 'x", "unterminated string", 11),
    ('tags.a = "x', "unterminated string", 9),
    ("metrics.`a b > 1", "unterminated name", 8),
    ("metrics.m > 1 foo", "expected AND or the end of the filter", 14),
    ("metrics.m > 1 and and params.a = 'x'", "expected a comparison", 18),
    ("and metrics.m > 1", "expected a comparison", 0),
    ("metrics.m > 1 and", "after AND", 17),
    ("metrics.m > 1 or params.a = 'x'", "OR is not supported", 14),
    ("metrics.m", "expected an operator", 9),
    ("metrics.m == 1", "unknown operator '=='", 10),
    ("metrics.m <> 1", "unknown operator '<>'", 10),
    ("params.a NOT 'x'", "expected an operator", 9),
    ("params.a IN 'x'", "expected '('", 12),
    ("params.a IN ('x' 'y')", "expected ',' or ')'", 17),
    ("params.a IN ()", "expected a quoted string", 13),
    ("params.a IN ('x',", "expected a quoted string", 17),
    ("attributes.foo = 'x'", "unknown attribute 'foo'", 11),
    ("foo = 'x'", "unknown attribute 'foo'", 0),
    ("metrics. > 1", "expected a key", 8),
    ("= 1", "expected a comparison", 0),
    ("(metrics.m > 1)", "expected a comparison", 0),
    ("metrics.m > 1)", "expected AND or the end", 13),
]


@pytest.mark.parametrize(("filter_string", "message", "position"), MALFORMED)
def test_malformed_filters_point_at_the_problem(
    filter_string: str, message: str, position: int
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter(filter_string)
    text = str(caught.value)
    assert message in text
    assert f"at character {position + 1})" in text
    *_, shown, caret = text.splitlines()
    assert shown == "    " + filter_string
    assert caret == "    " + " " * position + "^"


def test_long_filters_show_the_neighbourhood_of_the_error() -> None:
    filter_string = " and ".join(f"metrics.m{n} > {n}" for n in range(30)) + " and params.x > 'y'"
    with pytest.raises(InvalidInput) as caught:
        parse_filter(filter_string)
    *_, shown, caret = str(caught.value).splitlines()
    assert shown.startswith("    …") and len(shown) < 140
    assert shown[caret.index("^") :].startswith("> 'y'")


def test_malformed_filter_in_search_raises_before_touching_the_database(
    tracking: TrackingService,
) -> None:
    with pytest.raises(InvalidInput, match="unknown entity"):
        _search(tracking, filter_string="metrik.m > 1")
    with pytest.raises(InvalidInput, match="must be a string"):
        _search(tracking, filter_string=None)


_TOKENS = [
    "metrics.m",
    "params.p",
    "tags.`a b`",
    'params."x"',
    "attributes.status",
    "status",
    "created",
    "foo.x",
    "metrics.",
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "==",
    "LIKE",
    "ilike",
    "IN",
    "NOT",
    "not in",
    "and",
    "AND",
    "or",
    "(",
    ")",
    ",",
    "'x'",
    '"y"',
    "'",
    '"',
    "`",
    "''",
    "'a''b'",
    "'\\'",
    "1",
    "-2.5e3",
    "1e",
    ".5",
    "99999999999999999999999999",
    "x",
    "%_",
    "\\",
    "\n",
    "é",
]


@given(
    st.lists(st.sampled_from(_TOKENS), max_size=12),
    st.sampled_from(["", " ", "  "]),
)
def test_any_token_sequence_parses_or_raises_invalid_input(tokens: list[str], sep: str) -> None:
    _parse_or_explain(sep.join(tokens))


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_invalid_input(text: str) -> None:
    _parse_or_explain(text)


def _parse_or_explain(filter_string: str) -> None:
    try:
        clauses = parse_filter(filter_string)
    except InvalidInput as exc:
        assert exc.message.startswith("invalid filter: ")
        assert exc.message.splitlines()[-1].strip() == "^"
    else:
        assert all(isinstance(clause, Clause) for clause in clauses)


_ENTITY_SPELLINGS = {
    "metrics": ["metrics", "metric"],
    "params": ["params", "param", "parameter", "parameters"],
    "tags": ["tags", "tag"],
    "attributes": ["attributes", "attribute", "attr", "run"],
}


def _quote(text: str, quote: str) -> str:
    escaped = text.replace("\\", "\\\\").replace(quote, quote + quote)
    return quote + escaped + quote


def _storable_text(**sizes: int) -> st.SearchStrategy[str]:
    """Text a name or value can hold: no NUL, no lone surrogate (filters refuse those)."""
    chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    return st.text(alphabet=chars, **sizes)


@st.composite
def _clauses(draw: st.DrawFn) -> Clause:
    entity = draw(st.sampled_from(sorted(_ENTITY_SPELLINGS)))
    if entity == "attributes":
        key = draw(st.sampled_from(sorted(ATTRIBUTES)))
    else:
        key = draw(_storable_text(min_size=1, max_size=10))
    numeric = entity == "metrics" or key in NUMERIC_ATTRIBUTES
    op = draw(st.sampled_from(NUMERIC_OPS if numeric else STRING_OPS))
    value: str | float | tuple[str, ...]
    if entity == "metrics":
        value = draw(st.floats(allow_nan=False, allow_infinity=False))
    elif numeric:
        value = draw(st.integers(min_value=-(10**17), max_value=10**17))
    elif op in ("IN", "NOT IN"):
        value = tuple(draw(st.lists(_storable_text(max_size=8), min_size=1, max_size=3)))
    else:
        value = draw(_storable_text(max_size=8))
    return Clause(entity, key, op, value)


def _render(clause: Clause, spelling: str, quote: str) -> str:
    column = f"{spelling}.{_quote(clause.key, '`')}"
    if isinstance(clause.value, tuple):
        value = "(" + ", ".join(_quote(item, quote) for item in clause.value) + ")"
    elif isinstance(clause.value, str):
        value = _quote(clause.value, quote)
    else:
        value = repr(clause.value)
    return f"{column} {clause.op} {value}"


@given(
    st.lists(_clauses(), min_size=1, max_size=4),
    st.sampled_from(["'", '"']),
    st.sampled_from([" and ", " AND ", "\nAnd\t"]),
    st.randoms(use_true_random=False),
)
def test_rendered_clauses_parse_back(
    clauses: list[Clause], quote: str, joiner: str, random: Any
) -> None:
    rendered = joiner.join(
        _render(clause, random.choice(_ENTITY_SPELLINGS[clause.entity]), quote)
        for clause in clauses
    )
    assert parse_filter(rendered) == clauses
