"""The hot requests on PostgreSQL send their statements together (tracking/_round_trip.py):
what they answer and what they leave behind is what the statement-by-statement path gives,
on both backends, including the refusals that undo a whole request."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from loopwright.store.database import Database
from loopwright.tracking._round_trip import read_all, write_all

API = "/api/2.0/mlflow"


def _experiment(http: httpx.Client) -> str:
    created = http.post(f"{API}/experiments/create", json={"name": f"e-{uuid.uuid4().hex[:6]}"})
    created.raise_for_status()
    return str(created.json()["experiment_id"])


def test_runs_create_get_and_log_metric(http: httpx.Client) -> None:
    experiment_id = _experiment(http)
    created = http.post(
        f"{API}/runs/create",
        json={"experiment_id": experiment_id, "tags": [{"key": "a", "value": "1"}]},
    )
    assert created.status_code == 200, created.text
    run_id = created.json()["run"]["info"]["run_id"]
    for step in (1, 2):
        logged = http.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": "m", "value": step / 2, "timestamp": 5, "step": step},
        )
        assert logged.status_code == 200, logged.text
    run = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["experiment_id"] == experiment_id
    assert {"key": "a", "value": "1"} in run["data"]["tags"]
    assert run["data"]["metrics"] == [{"key": "m", "value": 1.0, "timestamp": 5, "step": 2}]
    native = http.get(f"/api/v1/runs/{run_id}").json()
    assert native["metrics"]["m"]["step"] == 2
    history = http.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}
    ).json()
    assert [p["step"] for p in history["metrics"]] == [1, 2]


def test_a_run_in_a_deleted_or_missing_experiment_is_refused_and_not_written(
    http: httpx.Client,
) -> None:
    experiment_id = _experiment(http)
    http.post(f"{API}/experiments/delete", json={"experiment_id": experiment_id})
    refused = http.post(
        f"{API}/runs/create",
        json={"experiment_id": experiment_id, "tags": [{"key": "a", "value": "1"}]},
    )
    assert refused.status_code == 400, refused.text
    assert "restore it" in refused.json()["message"]
    missing = http.post(f"{API}/runs/create", json={"experiment_id": "987654"})
    assert missing.status_code == 404, missing.text
    http.post(f"{API}/experiments/restore", json={"experiment_id": experiment_id})
    found = http.post(f"{API}/runs/search", json={"experiment_ids": [experiment_id]}).json()
    assert found.get("runs", []) == []  # the refused create left no run behind


def test_experiment_0_is_the_experiment_called_default_whatever_happened_to_it(
    http: httpx.Client,
) -> None:
    """MLflow's client names the Default experiment "0" on every run; the server looks it up
    by name each time (one statement), so a rename or delete elsewhere is seen at once."""

    def create() -> httpx.Response:
        return http.post(f"{API}/runs/create", json={"experiment_id": "0"})

    first = create().json()["run"]["info"]["experiment_id"]
    assert first == "0"
    http.post(f"{API}/experiments/delete", json={"experiment_id": first})
    refused = create()
    assert refused.status_code == 400 and "restore it" in refused.json()["message"]
    http.post(f"{API}/experiments/restore", json={"experiment_id": first})
    renamed = http.post(
        f"{API}/experiments/update", json={"experiment_id": first, "new_name": "was-default"}
    )
    assert renamed.status_code == 200, renamed.text
    second = create().json()["run"]["info"]["experiment_id"]
    assert second != first  # a new Default, as `mlflow.start_run()` expects one to exist
    found = http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "Default"})
    assert found.json()["experiment"]["experiment_id"] == second


def test_a_metric_of_an_unknown_run_is_refused_and_not_written(http: httpx.Client) -> None:
    refused = http.post(
        f"{API}/runs/log-metric",
        json={"run_id": "0" * 32, "key": "m", "value": 1, "timestamp": 1, "step": 1},
    )
    assert refused.status_code == 404, refused.text


def test_get_of_no_run_and_search_of_none(http: httpx.Client) -> None:
    experiment_id = _experiment(http)
    assert http.get(f"{API}/runs/get", params={"run_id": "0" * 32}).status_code == 404
    assert http.get(f"/api/v1/runs/{'0' * 32}").status_code == 404
    found = http.post(f"{API}/runs/search", json={"experiment_ids": [experiment_id]})
    assert found.status_code == 200 and found.json().get("runs", []) == []


@pytest.fixture
def database(db_uri: str) -> Any:
    db = Database.open(db_uri)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    yield db
    db.dispose()


def test_statements_sent_together_are_one_transaction(database: Database) -> None:
    assert write_all(
        database, [("INSERT INTO t VALUES (?)", [1]), ("INSERT INTO t VALUES (?)", [2])]
    ) == [1, 1]
    with pytest.raises(sa.exc.IntegrityError):  # the second repeats a key: neither stays
        write_all(database, [("INSERT INTO t VALUES (?)", [3]), ("INSERT INTO t VALUES (?)", [1])])
    with pytest.raises((sa.exc.DBAPIError, OverflowError)):  # the driver's refusal
        write_all(
            database, [("INSERT INTO t VALUES (?)", [4]), ("INSERT INTO t VALUES (?)", [2**70])]
        )
    rows, count = read_all(
        database, [("SELECT x FROM t ORDER BY x", []), ("SELECT count(*) FROM t", [])]
    )
    assert [r[0] for r in rows] == [1, 2] and count[0][0] == 2
    assert write_all(database, [("INSERT INTO t VALUES (?)", [5])]) == [1]  # pool still good


def test_connections_go_back_to_the_pool_as_they_came(database: Database) -> None:
    read_all(database, [("SELECT 1", [])])
    with pytest.raises(sa.exc.IntegrityError):
        write_all(database, [("INSERT INTO t VALUES (?)", [1]), ("INSERT INTO t VALUES (?)", [1])])
    with database.engine.connect() as conn:
        driver: Any = conn.connection.dbapi_connection
        if database.dialect == "postgresql":
            assert driver.autocommit is False
    with database.write() as conn:  # a transaction of the ordinary kind still rolls back
        conn.exec_driver_sql("INSERT INTO t VALUES (7)")
    assert read_all(database, [("SELECT x FROM t", [])])[0] == [(7,)]


# Values each way of sending must store and return exactly: the special floats and -0.0, the
# ends of BIGINT, and text that would need escaping were it ever quoted.
TRICKY = [
    (1, -0.0, "it's"),
    (2, float("nan"), "back\\slash"),
    (3, float("inf"), "%s ? $1"),
    (4, float("-inf"), "ünï € \n"),
    (5, 1e308, "E'x'"),
    (6, 5e-324, '"q";'),
    (7, 0.1, ""),
    (8, 2.0**53 + 1, None),
    (9, None, "--"),
]
BIG = [(2**63 - 1,), (-(2**63),)]
# Each on the engine's connections, and awaited on an event loop's own (a server's hot request
# on PostgreSQL: store/_loop_postgres.py).
# "together": several statements as one (write_all's together=True).
WAYS = [
    "single",
    "pipelined",
    "together",
    "single on the loop",
    "pipelined on the loop",
    "together on the loop",
]


def _send(database: Database, way: str, queries: list[tuple[str, list[Any]]]) -> list[int]:
    """``write_all`` made to take ``way``: one statement a call (sent as it is), or all in one
    call (the pipeline, or one statement); from a thread, or in a nonblocking block on an
    event loop."""
    if way.endswith("on the loop"):
        sent: list[int] = on_the_loop(database, lambda: _send(database, way.split()[0], queries))
        return sent
    if way == "single":
        return [write_all(database, [query])[0] for query in queries]
    return write_all(database, queries, together=way == "together")


def on_the_loop(database: Database, work: Any) -> Any:
    """``work()`` as a server runs a hot request on PostgreSQL: in a nonblocking block, in a
    greenlet on an event loop."""
    import asyncio

    from sqlalchemy.util.concurrency import greenlet_spawn

    def block() -> Any:
        with database.nonblocking():
            assert database.loop_round_trips() is not None
            return work()

    return asyncio.run(greenlet_spawn(block))


@pytest.fixture
def values_table(pg_uri: str) -> Any:
    """Tables on PostgreSQL, the one backend with two ways of sending (SQLite runs statements in
    a transaction of the ordinary kind, and keeps neither NaN nor -0.0)."""
    db = Database.open(pg_uri)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BIGINT PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE v (id BIGINT PRIMARY KEY, f DOUBLE PRECISION, s TEXT)")
    yield db
    db.dispose()


def _reader(way: str) -> Any:
    """``read_all``, on the loop for a way that sends there."""
    if way.endswith("on the loop"):
        return lambda db, queries: on_the_loop(db, lambda: read_all(db, queries))
    return read_all


def _assert_tricky_came_back(back: list[Any]) -> None:
    import math

    for (_, sent, text), (_, got, stored) in zip(TRICKY, back, strict=True):
        assert stored == text
        if sent is None or got is None:
            assert sent is got, (sent, got)
        elif math.isnan(sent):
            assert math.isnan(got)
        else:
            assert got == sent and math.copysign(1, got) == math.copysign(1, sent), (sent, got)


@pytest.mark.parametrize("way", WAYS)
def test_each_way_stores_and_returns_values_exactly(values_table: Database, way: str) -> None:
    inserts = [("INSERT INTO v VALUES (?, ?, ?)", list(row)) for row in TRICKY]
    assert _send(values_table, way, inserts) == [1] * len(TRICKY)
    big = [("INSERT INTO t VALUES (?)", list(row)) for row in BIG]
    assert _send(values_table, way, big) == [1, 1]
    read = _reader(way)
    _assert_tricky_came_back(read(values_table, [("SELECT id, f, s FROM v ORDER BY id", [])])[0])
    # Reads with the same values as conditions find the rows (each way reads as it writes).
    found = read(
        values_table,
        [
            ("SELECT id FROM v WHERE f = ? AND s = ?", [0.1, ""]),
            ("SELECT id FROM v WHERE s = ?", ["%s ? $1"]),
            ("SELECT x FROM t WHERE x = ? OR x = ? ORDER BY x", [-(2**63), 2**63 - 1]),
        ],
    )
    assert found == [[(7,)], [(3,)], [(-(2**63),), (2**63 - 1,)]]


@pytest.mark.parametrize("way", WAYS)
def test_each_way_stores_arrays_exactly(values_table: Database, way: str) -> None:
    # Arrays (a log-batch's columns) go in binary: the same values as one row at a time.
    ids, floats, texts = (list(column) for column in zip(*TRICKY, strict=True))
    insert = "INSERT INTO v SELECT * FROM unnest(?::bigint[], ?::float8[], ?::text[])"
    big = ("INSERT INTO t SELECT * FROM unnest(?::bigint[])", [[x for (x,) in BIG]])
    assert _send(values_table, way, [(insert, [ids, floats, texts]), big]) == [len(TRICKY), 2]
    read = _reader(way)
    _assert_tricky_came_back(read(values_table, [("SELECT id, f, s FROM v ORDER BY id", [])])[0])
    assert read(values_table, [("SELECT x FROM t ORDER BY x", [])])[0] == sorted(BIG)
    # An array as a condition, and an empty one.
    found = read(
        values_table,
        [
            ("SELECT id FROM v WHERE s = ANY(?::text[]) ORDER BY id", [["%s ? $1", "--", "x"]]),
            ("SELECT count(*) FROM v WHERE id = ANY(?::bigint[])", [[]]),
        ],
    )
    assert found == [[(3,), (9,)], [(0,)]]


@pytest.mark.parametrize("way", WAYS)
def test_each_way_is_one_transaction_and_refuses_what_postgres_refuses(
    values_table: Database, way: str
) -> None:
    row = "INSERT INTO v VALUES (?, ?, ?)"
    repeated: list[tuple[str, list[Any]]] = (
        [("INSERT INTO t VALUES (?), (?)", [5, 5])]
        if way.startswith("single")
        else [(row, [10, 1.0, "a"]), ("INSERT INTO t VALUES (?)", [5]), (row, [10, 2.0, "b"])]
    )
    with pytest.raises(sa.exc.IntegrityError):  # the last repeats a key: none of them stays
        _send(values_table, way, repeated)
    with pytest.raises((sa.exc.DBAPIError, ValueError)):  # NUL: the driver refuses, nothing sent
        _send(values_table, way, [("INSERT INTO v VALUES (?, ?, ?)", [12, 1.0, "a\x00b"])] * 2)
    assert read_all(values_table, [("SELECT count(*) FROM v", [])])[0] == [(0,)]
    assert read_all(values_table, [("SELECT count(*) FROM t", [])])[0] == [(0,)]


def test_the_hot_requests_stay_on_the_event_loop_once_warm(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a first round (caches filled), none of the hot requests goes to the thread pool
    (on PostgreSQL: every database access of theirs is a round trip awaited on the loop) but
    for the metric writer's own flush thread holding its lock a moment, which is a retry's
    reason, not a wait on the loop."""
    from loopwright.server import _hot

    reasons: list[str] = []
    nonblocking = _hot._nonblocking

    def recorded(db: Database, work: Any) -> Any:
        try:
            return nonblocking(db, work)
        except Exception as exc:
            reasons.append(f"{type(exc).__name__}: {exc}")
            raise

    experiment_id = _experiment(http)
    name = f"native-{uuid.uuid4().hex[:6]}"
    point = {"key": "m", "value": 0.5, "timestamp": 5, "step": 1}

    def one_round(i: int) -> None:
        created = http.post(f"{API}/runs/create", json={"experiment_id": experiment_id})
        run_id = created.json()["run"]["info"]["run_id"]
        native = http.post("/api/v1/runs", json={"experiment": name}).json()["id"]
        answers = [
            created,
            http.post(f"{API}/runs/log-metric", json={"run_id": run_id, **point, "step": i}),
            http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [point]}),
            http.get(f"{API}/runs/get", params={"run_id": run_id}),
            http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED"}),
            http.post(f"/api/v1/runs/{native}/metrics", json={"metrics": [point]}),
            http.get(f"/api/v1/runs/{native}"),
        ]
        assert [a.status_code for a in answers] == [200] * 5 + [204, 200], answers[-1].text

    one_round(0)
    monkeypatch.setattr(_hot, "_nonblocking", recorded)
    for i in range(1, 4):
        one_round(i)
    assert all("another flush of the metric writer" in r for r in reasons), reasons


@pytest.mark.parametrize("loop", [False, True], ids=["thread", "on the loop"])
def test_together_checks_foreign_keys_when_the_statement_ends(
    values_table: Database, loop: bool
) -> None:
    """A row and the rows referring to it go in together; rows referring to one that did not
    go in undo the whole statement (runs/create's check of its experiment relies on it)."""
    with values_table.write() as conn:
        conn.exec_driver_sql("CREATE TABLE child (p BIGINT REFERENCES t (x), k TEXT)")

    def together(queries: list[tuple[str, list[Any]]]) -> list[int]:
        if loop:
            sent: list[int] = on_the_loop(
                values_table, lambda: write_all(values_table, queries, together=True)
            )
            return sent
        return write_all(values_table, queries, together=True)

    parent = "INSERT INTO t SELECT ? WHERE EXISTS (SELECT 1 FROM v WHERE id = ?)"
    child = "INSERT INTO child VALUES (?, ?), (?, ?)"
    with values_table.write() as conn:
        conn.exec_driver_sql("INSERT INTO v VALUES (1, 1.0, 'a')")
    assert together([(parent, [1, 1]), (child, [1, "a", 1, "b"])]) == [1, 2]
    with pytest.raises(sa.exc.IntegrityError):  # no v row 2: no parent, and the children fail
        together([(parent, [2, 2]), (child, [2, "a", 2, "b"])])
    with pytest.raises(ValueError, match="RETURNING"):
        together([(f"{parent} RETURNING x", [3, 1]), (child, [3, "a", 3, "b"])])
    counts = read_all(
        values_table, [("SELECT count(*) FROM t", []), ("SELECT count(*) FROM child", [])]
    )
    assert counts == [[(1,)], [(2,)]]
