"""Data validation: expectations over Parquet/CSV files, suites in YAML, versions and results."""

from __future__ import annotations

import copy
import datetime
import decimal
import json
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from loopwright.data.validation import (
    Expectation,
    ExpectationResult,
    Suite,
    ValidationResult,
    latest_results,
    load_suite,
    save_result,
    save_suite,
    validate_files,
)
from loopwright.errors import DataError, InvalidInput, NotFound
from loopwright.store import schema
from loopwright.store.database import Database
from loopwright.store.migrate import ensure_schema

UTC = datetime.UTC
ROWS = {
    "id": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "age": [10, 20, 30, 40, 50, 60, 70, 80, 150, None],
    "country": ["US", "DE", "FR", "US", "DE", "XX", "US", "YY", "US", None],
    "email": [f"u{i}@example.com" for i in range(8)] + ["bad", "worse@"],
    "amount": [1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
    "active": [True] * 10,
    "city": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
    "zip": [1, 1, 1, 2, 1, 2, 1, 2, 1, 2],
    "seen_at": [datetime.datetime(2024, 1, 1, h) for h in range(10)],
    "day": [datetime.date(2024, 1, d) for d in range(1, 11)],
}


@pytest.fixture(params=["parquet", "csv"])
def table_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The ten rows of ROWS as a Parquet file and as a CSV file."""
    table = pa.table(ROWS)
    path = tmp_path / f"people.{request.param}"
    if request.param == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


@pytest.fixture
def parquet_file(tmp_path: Path) -> Path:
    path = tmp_path / "people.parquet"
    pq.write_table(pa.table(ROWS), path)
    return path


def check(path: Path, *expectations: Expectation) -> list[ExpectationResult]:
    return list(validate_files(Suite("t", expectations), [path]).results)


def one(path: Path, kind: str, **params: Any) -> ExpectationResult:
    return check(path, Expectation(kind, params))[0]


# --- expectations -----------------------------------------------------------------------------


def test_column_exists(table_file: Path) -> None:
    assert one(table_file, "column_exists", column="age").success
    missing = one(table_file, "column_exists", column="height")
    assert not missing.success
    assert missing.observed["exists"] is False and "age" in missing.observed["columns"]


@pytest.mark.parametrize(
    ("column", "family"),
    [
        ("id", "integer"),
        ("amount", "float"),
        ("country", "string"),
        ("active", "boolean"),
        ("seen_at", "timestamp"),
        ("day", "date"),
    ],
)
def test_column_type_families(table_file: Path, column: str, family: str) -> None:
    assert one(table_file, "column_type", column=column, type=family).success
    other = "string" if family != "string" else "integer"
    wrong = one(table_file, "column_type", column=column, type=other)
    assert not wrong.success and wrong.observed["family"] == family


def test_not_null_counts_and_shows_whole_rows(table_file: Path) -> None:
    assert one(table_file, "not_null", column="id").success
    result = one(table_file, "not_null", column="age")
    assert not result.success
    assert result.observed["unexpected_count"] == 1
    assert result.observed["element_count"] == 10
    assert result.observed["unexpected_fraction"] == pytest.approx(0.1)
    [row] = result.observed["examples"]
    assert row["id"] == 10 and row["age"] is None


def test_between_ignores_nulls_and_gives_examples(table_file: Path) -> None:
    assert one(table_file, "between", column="age", min=0, max=150).success
    result = one(table_file, "between", column="age", min=0, max=120)
    assert not result.success
    assert result.observed["element_count"] == 9  # the null is not_null's business
    assert result.observed["unexpected_count"] == 1
    assert result.observed["examples"] == [150]
    low = one(table_file, "between", column="amount", min=0)
    assert low.observed["unexpected_count"] == 1 and low.observed["examples"] == [-3.0]
    assert one(table_file, "between", column="amount", max=10).success


def test_between_compares_dates_given_as_text_or_dates(table_file: Path) -> None:
    assert one(table_file, "between", column="day", min="2024-01-01", max="2024-01-31").success
    result = one(table_file, "between", column="seen_at", max=datetime.datetime(2024, 1, 1, 7))
    assert result.observed["unexpected_count"] == 2
    assert result.observed["examples"] == ["2024-01-01T08:00:00", "2024-01-01T09:00:00"]


def test_in_set(table_file: Path) -> None:
    assert one(table_file, "in_set", column="country", values=["US", "DE", "FR", "XX", "YY"])
    result = one(table_file, "in_set", column="country", values=["US", "DE", "FR"])
    assert not result.success
    assert result.observed["unexpected_count"] == 2
    assert result.observed["element_count"] == 9
    assert result.observed["examples"] == ["XX", "YY"]
    assert one(table_file, "in_set", column="zip", values=[1, 2]).success


def test_matches_regex(table_file: Path) -> None:
    assert one(table_file, "matches_regex", column="email", pattern="^[a-z]").success
    result = one(table_file, "matches_regex", column="email", pattern=r"^[^@]+@[^@]+\.[a-z]+$")
    assert not result.success
    assert result.observed["unexpected_count"] == 2
    assert result.observed["examples"] == ["bad", "worse@"]
    # Non-text columns are matched as text.
    assert one(table_file, "matches_regex", column="zip", pattern="^[12]$").success


def test_mostly_is_the_fraction_that_must_pass(table_file: Path) -> None:
    # 7 of 9 non-null countries are in the set: 0.777…
    values = ["US", "DE", "FR"]
    assert one(table_file, "in_set", column="country", values=values, mostly=0.75).success
    assert not one(table_file, "in_set", column="country", values=values, mostly=0.8).success
    # Exactly on the threshold passes: 9 of 10 ages are present.
    assert one(table_file, "not_null", column="age", mostly=0.9).success
    assert not one(table_file, "not_null", column="age", mostly=0.91).success
    assert one(table_file, "between", column="age", max=120, mostly=8 / 9).success
    pattern = r"^\S+@\S+\.com$"
    assert one(table_file, "matches_regex", column="email", pattern=pattern, mostly=0.8).success


def test_unique_single_and_compound(table_file: Path) -> None:
    assert one(table_file, "unique", column="id").success
    single = one(table_file, "unique", column="city")
    assert not single.success
    assert single.observed["unexpected_count"] == 10  # every row shares its city with another
    assert single.observed["duplicated_keys"] == 5
    assert sorted(single.observed["examples"]) == ["a", "b", "c", "d", "e"]
    compound = one(table_file, "unique", columns=["city", "zip"])
    assert not compound.success
    assert compound.observed["unexpected_count"] == 2
    assert compound.observed["examples"] == [{"city": "a", "zip": 1}]
    assert one(table_file, "unique", columns=["id", "city"]).success


def test_unique_skips_rows_with_a_null_key(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"k": [1, None, None], "j": ["x", "y", "y"]}), path)
    assert one(path, "unique", column="k").success
    assert one(path, "unique", columns=["k", "j"]).success


def test_row_count_between(table_file: Path) -> None:
    assert one(table_file, "row_count_between", min=10, max=10).success
    assert one(table_file, "row_count_between", min=1).success
    result = one(table_file, "row_count_between", max=9)
    assert not result.success and result.observed == {"row_count": 10}


def test_fresh_with_injected_now(table_file: Path) -> None:
    now = datetime.datetime(2024, 1, 1, 12, tzinfo=UTC)  # newest seen_at is 09:00
    fresh = one(table_file, "fresh", column="seen_at", max_age="3h", now=now)
    assert fresh.success
    assert fresh.observed["age_seconds"] == 3 * 3600
    assert fresh.observed["max"] == "2024-01-01T09:00:00+00:00"
    stale = one(table_file, "fresh", column="seen_at", max_age="2h59m", now=now)
    assert not stale.success and stale.observed["max_age_seconds"] == 2 * 3600 + 59 * 60
    assert one(table_file, "fresh", column="seen_at", max_age=10_800, now=now).success
    assert one(table_file, "fresh", column="seen_at", now="2024-01-02T08:00:00").success
    assert not one(table_file, "fresh", column="seen_at", now=now.timestamp() + 86400).success
    assert one(table_file, "fresh", column="day", max_age="1d", now="2024-01-11T00:00:00Z")
    wrong = one(table_file, "fresh", column="id", now=now)
    assert not wrong.success and "timestamp or date" in wrong.observed["error"]


def test_fresh_understands_time_zones(tmp_path: Path) -> None:
    path = tmp_path / "tz.parquet"
    moment = datetime.datetime(2024, 6, 1, 12, tzinfo=UTC)
    pq.write_table(
        pa.table({"t": pa.array([moment], pa.timestamp("us", tz="Europe/Berlin"))}), path
    )
    result = one(path, "fresh", column="t", max_age="1h", now="2024-06-01T14:30:00+02:00")
    assert result.success and result.observed["age_seconds"] == 1800


def test_fresh_on_an_empty_table_fails(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"t": pa.array([], pa.timestamp("us"))}), path)
    result = one(path, "fresh", column="t")
    assert not result.success and result.observed["max"] is None


# --- custom SQL -------------------------------------------------------------------------------


def test_sql_zero_rows(table_file: Path) -> None:
    result = one(table_file, "sql", query="SELECT id, amount FROM data WHERE amount < 0")
    assert not result.success
    assert result.observed == {"unexpected_count": 1, "examples": [{"id": 3, "amount": -3.0}]}
    ok = one(table_file, "sql", query="SELECT * FROM data WHERE amount > 100 -- none;\n")
    assert ok.success and ok.observed == {"unexpected_count": 0, "examples": []}


def test_sql_true(table_file: Path) -> None:
    assert one(table_file, "sql", query="SELECT sum(amount) > 0 FROM data", expect="true").success
    false = one(table_file, "sql", query="SELECT max(age) < 100 FROM data", expect="true")
    assert not false.success and false.observed == {"value": False}
    shape = one(table_file, "sql", query="SELECT id FROM data", expect="true")
    assert not shape.success and "one row with one boolean" in shape.observed["error"]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('{other}')",
    ],
)
def test_sql_cannot_read_other_files(parquet_file: Path, tmp_path: Path, query: str) -> None:
    other = tmp_path / "secret.parquet"
    pq.write_table(pa.table({"secret": [42]}), other)
    result = one(parquet_file, "sql", query=query.format(other=other))
    assert not result.success
    assert "disabled" in result.observed["error"], result.observed


def test_sql_runs_in_a_locked_connection(parquet_file: Path) -> None:
    query = "SELECT * FROM data WHERE current_setting('enable_external_access')"
    assert one(parquet_file, "sql", query=query).success  # the setting is false
    tables = one(parquet_file, "sql", query="SELECT table_name FROM duckdb_tables()")
    views = "SELECT view_name FROM duckdb_views() WHERE NOT internal AND view_name <> 'data'"
    assert tables.observed["unexpected_count"] == 0
    assert one(parquet_file, "sql", query=views).success


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELEC 1", "not valid SQL"),
        ("SELECT 1; SELECT 2", "one SELECT statement"),
        ("COPY data TO '/tmp/x.csv'", "one SELECT statement"),
        ("SET enable_external_access = true", "one SELECT statement"),
        ("", "must be a SQL query"),
    ],
)
def test_sql_must_be_one_select(query: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Suite("s").sql(query)


# --- errors inside a run ----------------------------------------------------------------------


def test_a_missing_column_fails_only_its_expectation(table_file: Path) -> None:
    results = check(
        table_file,
        Expectation("not_null", {"column": "height"}),
        Expectation("unique", {"columns": ["id", "weight"]}),
        Expectation("not_null", {"column": "id"}),
    )
    assert [r.success for r in results] == [False, False, True]
    assert results[0].observed["error"].startswith("column 'height' does not exist; columns: id,")
    assert "column 'weight' does not exist" in results[1].observed["error"]


def test_a_broken_comparison_fails_only_its_expectation(table_file: Path) -> None:
    results = check(
        table_file,
        Expectation("in_set", {"column": "id", "values": ["one", "two"]}),
        Expectation("between", {"column": "age", "max": 120}),
        Expectation("sql", {"query": "SELECT no_such_column FROM data"}),
    )
    assert [r.success for r in results] == [False, False, False]
    assert "error" in results[0].observed and "error" in results[2].observed
    assert results[1].observed["unexpected_count"] == 1


def test_bad_regular_expression_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"'\(unclosed' is not a regular expression"):
        Suite("s").matches_regex("email", "(unclosed")
    with pytest.raises(InvalidInput, match="not a regular expression"):
        Suite("s").matches_regex("email", r"(?<=look)behind")


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("not_nul", {"column": "a"}, "unknown expectation 'not_nul'; did you mean 'not_null'"),
        ("between", {"column": "a", "minimum": 1}, "has no parameter 'minimum'; did you mean"),
        ("between", {"column": "a"}, "give min, max or both"),
        ("between", {"column": "a", "min": 5, "max": 1}, "min 5 is greater than max 1"),
        ("not_null", {}, "needs parameter 'column'"),
        ("not_null", {"column": "a", "mostly": 1.5}, "mostly must be a number from 0 to 1"),
        ("in_set", {"column": "a", "values": []}, "must not be empty"),
        ("in_set", {"column": "a", "values": ["x", None]}, "not None"),
        ("column_type", {"column": "a", "type": "int"}, "must be one of integer, float"),
        ("unique", {}, "give either column or columns"),
        ("unique", {"column": "a", "columns": ["b"]}, "give either column or columns"),
        ("fresh", {"column": "a", "max_age": "soon"}, "must be a duration"),
        ("fresh", {"column": "a", "now": "yesterday"}, "ISO timestamp"),
        ("sql", {"query": "SELECT 1", "expect": "many"}, "'zero_rows' or 'true'"),
        ("row_count_between", {"min": -1}, "whole number >= 0"),
    ],
)
def test_expectations_are_checked_on_construction(
    kind: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        Expectation(kind, params)


# --- files ------------------------------------------------------------------------------------


def test_a_folder_of_parts_is_one_table(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"id": [2, 3], "extra": ["x", "y"]}), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    result = validate_files(Suite("s").row_count_between(4, 4).unique("id"), [folder])
    assert [r.success for r in result.results] == [True, False]
    files = sorted(folder.glob("*.parquet"))
    assert validate_files(Suite("s").row_count_between(4, 4), files).success


def test_format_is_named_or_inferred(tmp_path: Path) -> None:
    path = tmp_path / "rows.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="pass format="):
        validate_files(Suite("s").row_count_between(1), [path])
    assert validate_files(Suite("s").row_count_between(1, 1), [path], format="csv").success
    with pytest.raises(InvalidInput, match="format 'xlsx' is not supported"):
        validate_files(Suite("s"), [path], format="xlsx")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        validate_files(Suite("s"), [tmp_path / "nope.parquet"])
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read"):
        validate_files(Suite("s"), [broken])
    with pytest.raises(InvalidInput, match="no data files"):
        validate_files(Suite("s"), [])


def test_result_to_dict(parquet_file: Path) -> None:
    result = validate_files(Suite("s").not_null("id").between("age", max=100), [parquet_file])
    assert isinstance(result, ValidationResult) and not result.success
    document = result.to_dict()
    assert document["suite"] == "s" and document["suite_version"] is None
    assert document["statistics"] == {"evaluated": 2, "failed": 1}
    assert document["results"][1]["kind"] == "between"
    assert document["results"][1]["params"] == {"column": "age", "max": 100}
    json.dumps(document, allow_nan=False)


def test_observations_are_json(tmp_path: Path) -> None:
    path = tmp_path / "odd.parquet"
    values = {"t": [datetime.datetime(2024, 1, 1)], "f": [float("nan")], "b": [b"\x00"]}
    pq.write_table(
        pa.table(values | {"d": pa.array([decimal.Decimal("1.50")], pa.decimal128(5, 2))}), path
    )
    result = validate_files(Suite("s").sql("SELECT * FROM data"), [path])
    [row] = result.results[0].observed["examples"]
    assert row == {"t": "2024-01-01T00:00:00", "f": "nan", "b": "b'\\x00'", "d": "1.50"}
    json.dumps(result.to_dict(), allow_nan=False)


def test_csv_rows_that_break_the_sniffed_type_fail_their_expectations(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(30_000)) + "oops,y\n")
    results = check(
        path,
        Expectation("between", {"column": "a", "min": 0}),
        Expectation("not_null", {"column": "b"}),
    )
    assert not results[0].success and "oops" in results[0].observed["error"]
    assert results[1].success


# --- suites and YAML --------------------------------------------------------------------------

SUITE_YAML = """\
name: people
expectations:
  - not_null: {column: id}
  - between: {column: age, min: 0, max: 120, mostly: 0.5}
  - in_set:
      column: country
      values: [US, DE]
  - unique: {columns: [city, zip]}
  - fresh: {column: seen_at, max_age: 24h, now: 2024-01-02T00:00:00Z}
  - sql: {query: "SELECT * FROM data WHERE amount < 0"}
"""


def test_suites_pickle_and_copy() -> None:
    suite = Suite.from_yaml(SUITE_YAML)
    assert pickle.loads(pickle.dumps(suite)) == suite == copy.deepcopy(suite)


def test_builder_returns_new_suites() -> None:
    base = Suite("s")
    grown = base.not_null("id")
    assert base.expectations == () and len(grown.expectations) == 1
    assert grown.unique(columns=["a", "b"]).expectations[-1].params == {"columns": ("a", "b")}


def test_yaml_round_trip(tmp_path: Path) -> None:
    suite = Suite.from_yaml(SUITE_YAML)
    assert [e.kind for e in suite.expectations][:3] == ["not_null", "between", "in_set"]
    assert Suite.from_yaml(suite.to_yaml()) == suite
    assert Suite.from_dict(suite.to_dict()) == suite
    path = tmp_path / "people.yaml"
    path.write_text(SUITE_YAML)
    assert Suite.from_yaml(path) == suite == Suite.from_yaml(str(path))
    built = (
        Suite("people")
        .not_null("id")
        .between("age", min=0, max=120, mostly=0.5)
        .in_set("country", ["US", "DE"])
        .unique(columns=["city", "zip"])
        .fresh("seen_at", "24h", now=datetime.datetime(2024, 1, 2, tzinfo=UTC))
        .sql("SELECT * FROM data WHERE amount < 0")
    )
    assert built == suite and built.content_hash == suite.content_hash
    assert len({suite, built}) == 1


def test_defaults_do_not_change_the_hash() -> None:
    plain = Suite("s").not_null("id").fresh("t")
    spelled = Suite("s").not_null("id", mostly=1).fresh("t", max_age="24h", now=None)
    assert plain.content_hash == spelled.content_hash
    assert plain.content_hash != Suite("s").not_null("id", mostly=0.9).content_hash
    assert len(plain.content_hash) == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: s\nexpectations:\n  - not_null: {column: id\n", r"malformed YAML at line 4"),
        ("name: s\nexpectations: [\n", r"malformed YAML at line 3"),
        ("name: s\nexpectations:\n  - not_null: {column: id}\n  - nul: {column: x}\n", r"line 4"),
        ("name: s\nexpectations:\n\n  - between: {column: a, mn: 1}\n", r"line 4.*'mn'"),
        ("name: s\nexpectations:\n  - [not_null]\n", r"expectation 1 \(line 3\)"),
        ("- not_null: {column: id}\n", "mapping with keys 'name' and 'expectations'"),
        ("name: s\nchecks: []\n", "mapping with keys 'name' and 'expectations'"),
        ("expectations: []\n", "suite name None"),
        ("name: s\nexpectations: {not_null: {column: id}}\n", "must be a list"),
    ],
)
def test_yaml_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Suite.from_yaml(text)


def test_yaml_file_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        Suite.from_yaml(tmp_path / "none.yaml")


# --- versions and results in the store --------------------------------------------------------


@pytest.fixture
def db(db_uri: str) -> Iterator[Database]:
    database = Database.open(db_uri)
    ensure_schema(database)
    yield database
    database.dispose()


def make_dataset_version(db: Database, number: int = 1) -> str:
    with db.write() as conn:
        if conn.execute(sa.select(schema.datasets.c.id)).first() is None:
            conn.execute(
                schema.datasets.insert(),
                {"id": "d" * 32, "name": "people", "created_at": 1, "updated_at": 1},
            )
        version_id = f"{number:032x}"
        conn.execute(
            schema.dataset_versions.insert(),
            {"id": version_id, "dataset_id": "d" * 32, "number": number}
            | {"content_hash": f"{number:064x}", "file_count": 1, "total_size": 1, "created_at": 1},
        )
    return version_id


def test_suite_versions_follow_content(db: Database) -> None:
    first = Suite("people").not_null("id")
    with db.write() as conn:
        id1, v1 = save_suite(conn, first)
        assert save_suite(conn, Suite("people").not_null("id", mostly=1.0)) == (id1, v1)
        id2, v2 = save_suite(conn, first.unique("id"))
        assert save_suite(conn, Suite("other").not_null("id"))[1] == 1
    assert (v1, v2) == (1, 2) and id1 != id2
    with db.write() as conn:  # going back to an earlier content is that earlier version
        assert save_suite(conn, first) == (id1, 1)
    with db.read() as conn:
        assert load_suite(conn, "people") == (id2, 2, first.unique("id"))
        assert load_suite(conn, "people", 1) == (id1, 1, first)
        with pytest.raises(NotFound, match=r"suite 'people' has no version 7; versions: 1, 2"):
            load_suite(conn, "people", 7)
        with pytest.raises(NotFound, match=r"suite 'peple' does not exist; suites: other, people"):
            load_suite(conn, "peple")


def test_results_are_stored_per_dataset_version(db: Database, parquet_file: Path) -> None:
    version_id = make_dataset_version(db)
    strict = Suite("people").between("age", max=120)
    lenient = Suite("people").between("age", max=200)
    with db.write() as conn:
        strict_id, _ = save_suite(conn, strict)
        other_id, _ = save_suite(conn, Suite("ids").unique("id"))
        first = save_result(conn, version_id, strict_id, validate_files(strict, [parquet_file]))
        save_result(
            conn, version_id, other_id, validate_files(Suite("ids").unique("id"), [parquet_file])
        )
    with db.write() as conn:
        lenient_id, lenient_version = save_suite(conn, lenient)
        latest = save_result(conn, version_id, lenient_id, validate_files(lenient, [parquet_file]))
    with db.read() as conn:
        shown = latest_results(conn, version_id)
        assert latest_results(conn, "0" * 32) == []
    assert [(r["suite"], r["suite_version"], r["success"]) for r in shown] == [
        ("ids", 1, True),
        ("people", lenient_version, True),
    ]
    assert shown[1]["id"] == latest != first and shown[1]["suite_id"] == lenient_id
    assert shown[1]["result"]["suite_version"] == 2
    assert shown[1]["result"]["results"][0]["observed"]["unexpected_count"] == 0


def test_save_result_checks_its_references(db: Database, parquet_file: Path) -> None:
    version_id = make_dataset_version(db)
    suite = Suite("people").not_null("id")
    result = validate_files(suite, [parquet_file])
    with db.write() as conn:
        suite_id, _ = save_suite(conn, suite)
        other_id, _ = save_suite(conn, Suite("other").not_null("id"))
        with pytest.raises(NotFound, match="save the suite first"):
            save_result(conn, version_id, "f" * 32, result)
        with pytest.raises(InvalidInput, match="not 'other'"):
            save_result(conn, version_id, other_id, result)
        with pytest.raises(NotFound, match="dataset version"):
            save_result(conn, "e" * 32, suite_id, result)
        assert save_result(conn, version_id, suite_id, result)


# --- bounds on the work -----------------------------------------------------------------------

ENDLESS = "SELECT * FROM data, range(100000000000)"


def test_a_query_past_its_time_limit_is_stopped(parquet_file: Path) -> None:
    from loopwright.data._query_guard import QueryLimits
    from loopwright.errors import LimitExceeded

    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"time limit of 0.5 s.*query_timeout"):
        validate_files(Suite("endless").sql(ENDLESS), [parquet_file], limits=QueryLimits(0.5))
    assert time.monotonic() - started < 10
    # Within the limit, the same connection rules give the usual answer.
    fast = validate_files(Suite("fast").sql("SELECT * FROM data WHERE id < 0"), [parquet_file])
    assert fast.success


def test_a_query_past_its_memory_limit_is_stopped(parquet_file: Path) -> None:
    from loopwright.data._query_guard import QueryLimits
    from loopwright.errors import LimitExceeded

    greedy = "SELECT string_agg(i::VARCHAR, ',') AS s FROM data, range(3000000) t(i)"
    limits = QueryLimits(seconds=60, memory=32 << 20)
    with pytest.raises(LimitExceeded, match=f"memory limit of {32 << 20} bytes.*query_memory"):
        validate_files(
            Suite("greedy").sql(greedy, expect="zero_rows"), [parquet_file], limits=limits
        )


def test_the_settings_bound_validation_through_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopwright as lw
    from loopwright.errors import LimitExceeded

    monkeypatch.setenv("LOOPWRIGHT_QUERY_TIMEOUT", "0.5")
    table = tmp_path / "t.csv"
    table.write_text("x\n1\n2\n", encoding="utf-8")
    client = lw.connect(home=tmp_path / "home")
    try:
        data = client.datasets.add("tiny", table)
        with pytest.raises(LimitExceeded, match="query_timeout"):
            client.datasets.validate(data, Suite("endless").sql(ENDLESS))
    finally:
        client.close()
