"""Profiles: exact statistics on small data, the same numbers from every format, bounded memory."""

from __future__ import annotations

import datetime
import gzip
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from loopwright.data import profile as profile_module
from loopwright.data.profile import is_tabular, profile_file, profile_table, schema_of
from loopwright.errors import DataError, InvalidInput, NotFound

LEVELS = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
WEIRD_NAMES = ["a b", 'quote"d', "it's", "ünï😀", "select", 'x"); DROP TABLE src; --']


def _plain_json(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile survives strict JSON (no NaN) unchanged."""
    loaded: dict[str, Any] = json.loads(json.dumps(profile, allow_nan=False))
    assert loaded == profile
    return loaded


@pytest.fixture
def known() -> pa.Table:
    rng = np.random.default_rng(7)
    n = 1_000
    start = np.datetime64("2024-01-01T00:00:00", "us")
    return pa.table(
        {
            "x": pa.array(rng.normal(3.0, 2.0, n), mask=rng.random(n) < 0.1),
            "n": pa.array(rng.integers(-5, 40, n), mask=rng.random(n) < 0.05),
            "city": pa.array(
                rng.choice(["paris", "oslo", "lima", "quito"], n, p=[0.5, 0.3, 0.15, 0.05])
            ),
            "ok": pa.array(rng.random(n) < 0.3),
            "when": pa.array(start + rng.integers(0, 10**12, n).astype("timedelta64[us]")),
        }
    )


def _values(table: pa.Table, name: str) -> Any:
    column = table[name].to_numpy(zero_copy_only=False).astype(float)
    return column[np.isfinite(column)]


def test_numeric_statistics_are_exact_and_agree_with_numpy(known: pa.Table) -> None:
    profile = _plain_json(profile_table(known, histogram_bins=13))
    assert (profile["format"], profile["row_count"], profile["column_count"]) == ("table", 1000, 5)
    for name in ("x", "n"):
        values, column = _values(known, name), profile["columns"][name]
        assert column["kind"] == "numeric"
        assert column["count"] == len(values) == 1000 - column["null_count"]
        assert column["null_count"] == known[name].null_count
        assert column["null_fraction"] == pytest.approx(known[name].null_count / 1000)
        assert column["distinct"] == len(np.unique(values)) and not column["distinct_approximate"]
        assert column["min"] == values.min() and column["max"] == values.max()
        assert column["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert column["std"] == pytest.approx(values.std(ddof=1), rel=1e-12)
        assert column["zeros"] == int((values == 0).sum())
        expected = dict(zip(LEVELS, np.quantile(values, list(LEVELS.values())), strict=True))
        assert column["quantiles"] == pytest.approx(expected, rel=1e-12)
        assert not column["quantiles_approximate"]
        counts, edges = np.histogram(values, 13)
        assert column["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
        assert sum(column["histogram"]["counts"]) == column["count"]
    assert (
        profile["columns"]["x"]["type"] == "double" and profile["columns"]["n"]["type"] == "int64"
    )
    assert isinstance(profile["columns"]["n"]["min"], int)


def test_histograms_bin_values_on_edges_like_numpy() -> None:
    rng = np.random.default_rng(0)
    for bins in (1, 3, 7, 20):
        for values in (rng.integers(-10, 10, 300).astype(float), np.round(rng.random(200) * 7, 1)):
            column = profile_table(pa.table({"v": values}), histogram_bins=bins)["columns"]["v"]
            counts, edges = np.histogram(values, bins)
            assert column["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
    single = profile_table(pa.table({"v": [4.0, 4.0]}), histogram_bins=4)["columns"]["v"]
    assert single["histogram"]["edges"] == np.histogram([4.0, 4.0], 4)[1].tolist()
    assert single["histogram"]["counts"] == [0, 0, 2, 0]


def test_categorical_boolean_and_datetime_statistics(known: pa.Table) -> None:
    columns = profile_table(known, top_k=3)["columns"]
    city = columns["city"]
    expected = Counter(known["city"].to_pylist())
    ranked = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:3]
    assert city["kind"] == "categorical" and city["type"] == "string"
    assert city["top"] == [{"value": value, "count": count} for value, count in ranked]
    assert city["distinct"] == 4 and (city["min_length"], city["max_length"]) == (4, 5)

    ok = columns["ok"]
    trues = sum(known["ok"].to_pylist())
    assert ok["kind"] == "boolean" and (ok["true_count"], ok["false_count"]) == (
        trues,
        1000 - trues,
    )
    assert ok["distinct"] == 2

    when = columns["when"]
    stamps = known["when"].to_pylist()
    assert when["kind"] == "datetime" and when["type"] == "timestamp[us]"
    assert when["min"] == min(stamps).isoformat() and when["max"] == max(stamps).isoformat()


def test_dates_and_zoned_timestamps_give_iso_strings() -> None:
    table = pa.table(
        {
            "day": pa.array([datetime.date(2021, 5, 6), None, datetime.date(2020, 1, 1)]),
            "at": pa.array([0, 3_600_000, None], pa.timestamp("ms", tz="Asia/Tokyo")),
        }
    )
    columns = _plain_json(profile_table(table))["columns"]
    assert (columns["day"]["min"], columns["day"]["max"]) == ("2020-01-01", "2021-05-06")
    assert columns["day"]["null_count"] == 1 and columns["day"]["distinct"] == 2
    at = columns["at"]
    assert at["kind"] == "datetime" and at["type"] == "timestamp[ms, tz=Asia/Tokyo]"
    parsed = datetime.datetime.fromisoformat(at["max"])
    assert parsed == datetime.datetime(1970, 1, 1, 1, tzinfo=datetime.UTC)


def _write_all_formats(table: pa.Table, folder: Path) -> list[Path]:
    paths = [folder / name for name in ("t.parquet", "t.csv", "t.tsv", "t.csv.gz", "t.feather")]
    pq.write_table(table, paths[0])
    pcsv.write_csv(table, paths[1])
    pcsv.write_csv(table, paths[2], pcsv.WriteOptions(delimiter="\t"))
    paths[3].write_bytes(gzip.compress(paths[1].read_bytes()))
    feather.write_feather(table, paths[4])  # Arrow IPC file, LZ4-compressed
    stream = folder / "t.arrow"  # the IPC streaming format
    with ipc.new_stream(stream, table.schema) as writer:
        writer.write_table(table)
    return [*paths, stream]


def test_every_format_gives_the_same_profile(known: pa.Table, tmp_path: Path) -> None:
    table = known.append_column("a b", pa.array(np.arange(1000) % 7))
    expected = profile_table(table, sample_size=50)
    rows = {json.dumps(row) for row in profile_table(table, sample_size=1000)["sample"]["rows"]}
    assert len(rows) == 1000
    for path in _write_all_formats(table, tmp_path):
        profile = _plain_json(profile_file(path, sample_size=50))
        fmt = {".parquet": "parquet", ".feather": "arrow", ".arrow": "arrow"}.get(
            path.suffix, "csv"
        )
        assert profile["format"] == fmt
        assert profile["columns"] == expected["columns"], path.name
        # which rows a reservoir picks depends on how the source is laid out, not what it holds
        assert profile["sample"]["size"] == 50
        assert {json.dumps(row) for row in profile["sample"]["rows"]} <= rows
        assert schema_of(path) == [{"name": f.name, "type": str(f.type)} for f in table.schema]


def test_nan_and_infinities_are_counted_but_never_averaged() -> None:
    values = [1.0, 2.0, float("nan"), float("inf"), float("-inf"), None, 6.0]
    table = pa.table({"x": values, "f": pa.array(values, pa.float32())})
    profile = _plain_json(profile_table(table, histogram_bins=5))
    for column in profile["columns"].values():
        assert (column["count"], column["null_count"]) == (6, 1)
        assert (column["nan_count"], column["inf_count"]) == (1, 2)
        assert (column["min"], column["max"], column["mean"]) == (1.0, 6.0, 3.0)
        assert column["std"] == pytest.approx(np.std([1, 2, 6], ddof=1))
        assert column["quantiles"]["p50"] == 2.0
        assert column["histogram"]["counts"] == [1, 1, 0, 0, 1]
    sampled = [row["x"] for row in profile["sample"]["rows"]]
    assert sorted(sampled, key=lambda v: (v is None, v)) == [1.0, 2.0, 6.0, None, None, None, None]


def test_empty_tables_and_files_give_valid_profiles(known: pa.Table, tmp_path: Path) -> None:
    empty = known.slice(0, 0)
    for profile in (
        profile_table(empty),
        *(profile_file(p) for p in _write_all_formats(empty, tmp_path)),
    ):
        profile = _plain_json(profile)
        assert profile["row_count"] == 0 and profile["sample"] == {"rows": [], "size": 0}
        assert profile["column_count"] == 5
        for column in profile["columns"].values():
            assert column["count"] == column["null_count"] == 0 and column["null_fraction"] == 0.0
        if profile["format"] != "csv":  # a header-only CSV has no types to infer
            x = profile["columns"]["x"]
            assert x["mean"] is None and x["histogram"] == {"edges": [], "counts": []}
            assert set(x["quantiles"].values()) == {None}
    nothing = profile_table(pa.table({"a": [1]}).drop_columns(["a"]))
    assert nothing["column_count"] == 0 and nothing["columns"] == {}


def test_all_null_columns_give_valid_profiles() -> None:
    types = [pa.null(), pa.float64(), pa.int32(), pa.string(), pa.bool_(), pa.timestamp("s")]
    table = pa.table({f"c{i}": pa.nulls(4, kind) for i, kind in enumerate(types)})
    profile = _plain_json(profile_table(table))
    for column in profile["columns"].values():
        assert (column["count"], column["null_count"], column["null_fraction"]) == (0, 4, 1.0)
        assert column["distinct"] == 0
    assert profile["columns"]["c1"]["histogram"] == {"edges": [], "counts": []}
    assert profile["columns"]["c3"]["top"] == []
    assert profile["columns"]["c4"]["true_count"] == profile["columns"]["c4"]["false_count"] == 0
    assert profile["sample"]["size"] == 4


def test_awkward_column_names_are_quoted_everywhere(tmp_path: Path) -> None:
    table = pa.table({name: [i, i + 1, i + 1] for i, name in enumerate(WEIRD_NAMES)})
    table = table.append_column("label", pa.array(["a", "b", "b"]))
    for profile in (
        profile_table(table),
        *(profile_file(p) for p in _write_all_formats(table, tmp_path)),
    ):
        assert list(profile["columns"]) == [*WEIRD_NAMES, "label"]
        for i, name in enumerate(WEIRD_NAMES):
            assert profile["columns"][name]["min"] == i and profile["columns"][name]["max"] == i + 1
        assert all(list(row) == [*WEIRD_NAMES, "label"] for row in profile["sample"]["rows"])
    # DuckDB ignores case in identifiers and renames clashes; the profile keeps the originals
    clashing = profile_table(pa.table({"A": [1], "a": ["x"], "a_1": [True]}))
    assert {name: column["kind"] for name, column in clashing["columns"].items()} == {
        "A": "numeric",
        "a": "categorical",
        "a_1": "boolean",
    }
    assert clashing["sample"]["rows"] == [{"A": 1, "a": "x", "a_1": True}]
    duplicated = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    assert len(profile_table(duplicated)["columns"]) == 2  # under DuckDB's names, both kept


def test_sample_is_bounded_deterministic_and_made_of_real_rows() -> None:
    rng = np.random.default_rng(1)
    table = pa.table({"id": np.arange(5_000), "value": rng.normal(size=5_000)})
    first = profile_table(table, sample_size=100)["sample"]
    assert first["size"] == len(first["rows"]) == 100
    assert first == profile_table(table, sample_size=100)["sample"]
    ids = [row["id"] for row in first["rows"]]
    assert len(set(ids)) == 100
    by_id = dict(zip(table["id"].to_pylist(), table["value"].to_pylist(), strict=True))
    assert all(row["value"] == by_id[row["id"]] for row in first["rows"])
    assert max(ids) > 2_500, "a reservoir sample spans the whole table"
    assert profile_table(table, sample_size=0)["sample"] == {"rows": [], "size": 0}
    everything = profile_table(table.slice(0, 30), sample_size=100)["sample"]
    assert sorted(row["id"] for row in everything["rows"]) == list(range(30))


def test_past_the_exact_limit_distincts_and_quantiles_are_approximate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profile_module, "EXACT_ROWS", 1_000)
    monkeypatch.setattr(profile_module, "QUANTILE_SAMPLE", 2_000)
    rng = np.random.default_rng(2)
    x = rng.normal(size=20_000)
    table = pa.table({"x": x, "word": rng.choice(["a", "b", "c"], 20_000), "id": np.arange(20_000)})
    profile = profile_table(table, sample_size=10)
    column = profile["columns"]["x"]
    assert column["distinct_approximate"] and column["quantiles_approximate"]
    assert column["distinct"] == pytest.approx(20_000, rel=0.1)
    assert column["quantiles"]["p50"] == pytest.approx(np.median(x), abs=0.1)
    assert column["mean"] == pytest.approx(x.mean(), rel=1e-12)  # still exact
    assert column["histogram"]["counts"] == np.histogram(x, 20)[0].tolist()
    assert profile["columns"]["word"]["distinct"] == 3  # categories stay exact
    assert profile["sample"]["size"] == 10
    assert profile == profile_table(table, sample_size=10), "the reservoir is deterministic"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak RSS from /proc")
def test_a_large_file_is_profiled_in_bounded_memory(tmp_path: Path) -> None:
    rows, path = 2_000_000, tmp_path / "large.parquet"
    rng = np.random.default_rng(3)
    words = np.array([f"w{i:04d}" * 50 for i in range(1_000)])  # 250-character strings
    schema = pa.schema([("x", pa.float64()), ("n", pa.int64()), ("word", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for _ in range(rows // 500_000):
            chunk = {"x": rng.normal(size=500_000), "n": rng.integers(0, 1_000, 500_000)}
            chunk["word"] = words[rng.integers(0, 1_000, 500_000)]
            writer.write_table(pa.table(chunk, schema=schema))
    decoded_mb = 16 * rows / 2**20 + 254 * rows / 2**20  # the table once loaded: ~515 MB
    script = textwrap.dedent(
        f"""
        import json, re
        from loopwright.data.profile import profile_file
        profile = profile_file({str(path)!r})
        status = open("/proc/self/status").read()  # VmHWM, unlike ru_maxrss, starts afresh at exec
        peak_mb = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024
        print(json.dumps({{"peak_mb": peak_mb, "profile": profile}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    profile = result["profile"]
    assert result["peak_mb"] < 0.8 * decoded_mb, f"peak RSS {result['peak_mb']:.0f} MB"
    assert profile["row_count"] == rows
    x = profile["columns"]["x"]
    assert x["count"] == rows and x["distinct_approximate"] and x["quantiles_approximate"]
    assert x["quantiles"]["p50"] == pytest.approx(0.0, abs=0.02)
    assert x["quantiles"]["p99"] == pytest.approx(2.326, abs=0.05)
    assert sum(x["histogram"]["counts"]) == rows
    word = profile["columns"]["word"]
    assert word["distinct"] == 1_000 and word["max_length"] == 250
    assert profile["sample"]["size"] == 10_000


def test_a_csv_whose_types_change_after_the_sniffed_sample(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("v\n" + "1\n" * 50_000 + "surprise\n")
    column = profile_file(path)["columns"]["v"]
    assert column["kind"] == "categorical" and column["distinct"] == 2
    assert column["top"] == [{"value": "1", "count": 50_000}, {"value": "surprise", "count": 1}]


def test_schema_of_reads_only_the_schema(known: pa.Table, tmp_path: Path) -> None:
    expected = [{"name": f.name, "type": str(f.type)} for f in known.schema]
    for path in _write_all_formats(known, tmp_path):
        assert schema_of(path) == expected, path.name
    # the footer alone suffices: a Parquet file whose data pages are damaged still has a schema
    damaged = tmp_path / "damaged.parquet"
    data = bytearray((tmp_path / "t.parquet").read_bytes())
    data[4:200] = bytes(196)
    damaged.write_bytes(bytes(data))
    assert schema_of(damaged) == expected
    with pytest.raises(DataError, match=r"damaged\.parquet' as parquet"):
        profile_file(damaged)


@pytest.mark.parametrize(
    ("name", "tabular"),
    [
        ("a.parquet", True),
        ("A.PQ", True),
        ("a.csv", True),
        ("a.tsv.gz", True),
        ("a.csv.gz", True),
        ("a.arrow", True),
        ("a.feather", True),
        ("a.ipc", True),
        ("a.parquet.gz", False),
        ("a.json", False),
        ("model.pkl", False),
        ("csv", False),
    ],
)
def test_is_tabular_goes_by_suffix(name: str, tabular: bool) -> None:
    assert is_tabular(name) is tabular
    assert is_tabular(Path("some/folder") / name) is tabular


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match=r"not a tabular file; use \.parquet"):
        profile_file(tmp_path / "notes.txt")
    with pytest.raises(NotFound, match="no such file"):
        profile_file(tmp_path / "missing.parquet")
    with pytest.raises(NotFound):
        schema_of(tmp_path / "missing.csv")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"broken\.parquet' as parquet"):
        profile_file(tmp_path / "broken.parquet")
    with pytest.raises(DataError):
        schema_of(tmp_path / "broken.parquet")
    table = pa.table({"a": [1]})
    for options in ({"sample_size": -1}, {"histogram_bins": 0}, {"top_k": -2}, {"top_k": True}):
        with pytest.raises(InvalidInput, match=next(iter(options))):
            profile_table(table, **options)
    with pytest.raises(InvalidInput, match=r"pyarrow\.Table, not dict"):
        profile_table({"a": [1]})


def test_importing_the_module_loads_neither_duckdb_nor_pyarrow() -> None:
    script = (
        "import sys, loopwright.data.profile; "
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
