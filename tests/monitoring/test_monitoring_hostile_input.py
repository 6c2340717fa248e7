"""Monitoring under hostile input: sketch blobs that are corrupted, truncated, foreign or
pickled; labels of the wrong shape; webhook URLs that must be refused; CLI files that are
missing, folders, empty or unreadable; windows of 0 rows, 1 row, all nulls, strings for numbers.
Each gets a one-line error naming the fix, or the correct result."""

from __future__ import annotations

import io
import json
import math
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_api import DEPLOYMENT, Api, api  # noqa: F401  (fixture)
from test_monitors_cli import CREATE, WIDE, lw, ok, one_line_error, store  # noqa: F401  (fixture)
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.errors import InvalidInput, NotFound
from loopwright.monitoring._labels import _checked, read_label_file
from loopwright.monitoring._monitors import check_webhook
from loopwright.monitoring.compare import compare
from loopwright.monitoring.sketch import ReferenceSketch
from loopwright.monitoring.webhooks import check_url

REBUILD = "rebuild the reference"


def _table(rows: int = 90) -> pa.Table:
    return pa.table({"x": [1.0, 2.0, 3.0] * (rows // 3), "c": ["a", "b", "c"] * (rows // 3)})


def _blob(header: dict[str, Any], npz: bytes, ipc: bytes) -> bytes:
    parts = [json.dumps(header).encode(), npz, ipc]
    return b"LWSKETCH\x01" + b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class Boom:
    """Unpickling this writes a file: proof that a pickle inside a sketch was executed."""

    target = ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.target).write_text, ("pwned",))


# --- sketch blobs -------------------------------------------------------------------------------


def test_sketch_round_trips_and_every_cut_is_refused() -> None:
    blob = ReferenceSketch.build(_table()).to_bytes()
    assert ReferenceSketch.from_bytes(blob).rows == 90
    for cut in (0, 5, 9, 12, 17, len(blob) // 2, len(blob) - 1):
        with pytest.raises(InvalidInput, match=REBUILD):
            ReferenceSketch.from_bytes(blob[:cut])
    with pytest.raises(InvalidInput, match="trailing bytes; " + REBUILD):
        ReferenceSketch.from_bytes(blob + b"\0")


def test_foreign_and_non_bytes_sketches_are_refused() -> None:
    import pickle

    with pytest.raises(InvalidInput, match="bad magic bytes"):
        ReferenceSketch.from_bytes(pickle.dumps({"rows": 1}))
    with pytest.raises(InvalidInput, match="bad magic bytes"):
        ReferenceSketch.from_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(InvalidInput, match="is bytes, not str"):
        ReferenceSketch.from_bytes("LWSKETCH")  # type: ignore[arg-type]


def test_a_pickle_inside_a_sketch_is_never_unpickled(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    Boom.target = str(target)
    npz = io.BytesIO()
    np.savez(npz, **{"0.counts": np.array([Boom()], dtype=object)})  # type: ignore[arg-type]  # numpy pickles objects
    header = {
        "format": 1,
        "rows": 1,
        "skipped": {},
        "columns": [
            {
                "name": "c",
                "kind": "categorical",
                "dtype": "string",
                "count": 1,
                "missing": 0,
                "categories": ["a"],
                "other": 0,
                "n_categories": 1,
            }
        ],
    }
    blob = _blob(header, npz.getvalue(), _ipc(pa.table({"c": ["a"]})))
    with pytest.raises(InvalidInput, match="corrupted .*" + REBUILD):
        ReferenceSketch.from_bytes(blob)
    assert not target.exists()


@pytest.mark.parametrize(
    "header",
    [
        {"format": 2, "rows": 1, "columns": []},
        {"format": 1, "rows": 1, "columns": "x"},
        {"format": 1, "rows": "many", "columns": []},
        {"format": 1, "rows": 1, "columns": [{"name": "c", "kind": "graph"}]},
    ],
)
def test_malformed_sketch_headers_are_refused(header: dict[str, Any]) -> None:
    npz = io.BytesIO()
    np.savez(npz)
    with pytest.raises(InvalidInput, match=r"reference sketch|format"):
        ReferenceSketch.from_bytes(_blob(header, npz.getvalue(), _ipc(pa.table({"c": ["a"]}))))


def test_a_tampered_numeric_sketch_is_refused() -> None:
    good = ReferenceSketch.build(pa.table({"x": np.linspace(0, 1, 500)})).to_bytes()
    # Swap the npz for one whose grid goes backwards: the sketch's invariants catch it.
    parts, pos = [], 9
    for _ in range(3):
        (size,) = struct.unpack_from("<Q", good, pos)
        parts.append(good[pos + 8 : pos + 8 + size])
        pos += 8 + size
    with np.load(io.BytesIO(parts[1])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["0.grid"] = arrays["0.grid"][::-1].copy()
    npz_out = io.BytesIO()
    np.savez(npz_out, **arrays)
    with pytest.raises(InvalidInput, match="corrupted .*" + REBUILD):
        ReferenceSketch.from_bytes(_blob(json.loads(parts[0]), npz_out.getvalue(), parts[2]))


# --- labels -------------------------------------------------------------------------------------

BAD_LABELS: list[object] = [
    "x" * 100_000,
    math.nan,
    math.inf,
    -math.inf,
    None,
    {"nested": {"json": 1}},
    [1, 2],
    b"bytes",
    object(),
]


@pytest.mark.parametrize("label", BAD_LABELS, ids=lambda v: type(v).__name__)
def test_bad_labels_are_refused_in_a_bounded_message(label: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        _checked({"r1": 1, "r2": label})
    message = str(caught.value)
    assert "finite numbers, strings (at most 1000 characters) or booleans" in message
    assert len(message) < 600  # a 100,000-character label is quoted, not dumped


@pytest.mark.parametrize("rid", [1, "", "a" * 201, "nul\0id", "\ud800"])
def test_bad_request_ids_are_refused(rid: object) -> None:
    with pytest.raises(InvalidInput, match="request id"):
        _checked({rid: 1})


def test_label_frames_with_wrong_columns_are_refused() -> None:
    with pytest.raises(InvalidInput, match="request_id"):
        _checked(pd.DataFrame({"id": ["a"], "label": [1]}))


# --- webhook URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/",
        "http:///path-only",
        "https://hooks.example.com/" + "a" * 5000,
        "",
        42,
    ],
)
def test_bad_webhook_urls_are_refused_at_create(url: object) -> None:
    with pytest.raises(InvalidInput, match=r"must be an http\(s\) URL of at most 2000"):
        check_webhook(url)


def test_a_webhook_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidInput, match="user:password@") as caught:
        check_webhook("https://ada:s3cret@hooks.example.com/x")
    assert "s3cret" not in str(caught.value)
    assert check_webhook("https://hooks.example.com/T0K3N") == "https://hooks.example.com/T0K3N"


def test_delivery_refuses_a_non_http_url_without_a_request() -> None:
    with pytest.raises(InvalidInput, match="scheme 'file' is refused"):
        check_url("file:///etc/passwd")
    with pytest.raises(InvalidInput, match="no host"):
        check_url("https://")


def test_cli_create_refuses_a_webhook_with_a_password(store: list[str]) -> None:  # noqa: F811
    args = [*CREATE[: CREATE.index("--webhook")], "--webhook", "http://u:pw@127.0.0.1:9/h"]
    result = lw(store, *args)
    one_line_error(result, "user:password@")
    assert "pw@" not in result.stderr


# --- compare windows ----------------------------------------------------------------------------


def test_an_empty_window_is_skipped_with_a_reason_not_flagged() -> None:
    result = compare(_table(), _table().slice(0, 0))
    assert not result.dataset_drift and result.current_rows == 0
    drift = {t.column: t for t in result.tests if t.kind == "drift"}
    assert math.isnan(drift["x"].statistic) and not drift["x"].drifted
    assert "no non-missing value" in str(drift["c"].detail["skipped"])


def test_a_one_row_window_is_not_judged_drifted_without_a_p_value() -> None:
    result = compare(_table(), _table().slice(0, 1))
    assert result.current_rows == 1 and not result.dataset_drift
    assert all(not t.drifted for t in result.tests if t.kind == "drift")


def test_an_all_null_window_flags_missing_values() -> None:
    nulls = pa.table(
        {"x": pa.array([None] * 50, pa.float64()), "c": pa.array([None] * 50, pa.string())}
    )
    result = compare(_table(), nulls)
    missing = {t.column: t for t in result.tests if t.test == "missing"}
    assert missing["x"].drifted and missing["x"].statistic == 1.0 and missing["c"].drifted
    wass = next(t for t in result.tests if t.column == "x" and t.kind == "drift")
    assert wass.detail == {"skipped": "the current window has no finite value"}


def test_strings_where_numbers_were_flag_a_type_change() -> None:
    result = compare(_table(), pa.table({"x": ["a"] * 50, "c": ["a"] * 50}))
    change = next(t for t in result.tests if t.column == "x" and t.test == "type_change")
    assert change.drifted and change.detail["current"] == "categorical (string)"
    drift = next(t for t in result.tests if t.column == "x" and t.kind == "drift")
    assert "type changed from double (numeric) to string (categorical)" in str(
        drift.detail["skipped"]
    )


# --- the CLI's files ----------------------------------------------------------------------------


def _compare(*args: str) -> Any:
    return CliRunner().invoke(app, ["monitors", "compare", *args], env=WIDE)


def test_cli_compare_refuses_folders_empty_files_and_foreign_bytes(tmp_path: Path) -> None:
    ref = tmp_path / "ref.parquet"
    pd.DataFrame({"a": np.arange(100.0)}).to_parquet(ref)
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    one_line_error(_compare(str(ref), str(folder)), "folder.parquet", "is a folder")
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    one_line_error(_compare(str(ref), str(empty)), "empty.parquet", "cannot read it as Parquet")
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_bytes(b"")
    one_line_error(_compare(str(ref), str(empty_csv)), "empty.csv", "cannot read it as CSV")
    pickled = tmp_path / "model.parquet"
    pickled.write_bytes(b"\x80\x04\x95" + b"\0" * 100)
    one_line_error(_compare(str(ref), str(pickled)), "cannot read it as Parquet")


def test_cli_compare_with_no_common_column_says_so(tmp_path: Path) -> None:
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pd.DataFrame({"a": np.arange(100.0)}).to_parquet(ref)
    pd.DataFrame({"b": np.arange(100.0)}).to_parquet(cur)
    result = _compare(str(ref), str(cur), "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    found = json.loads(result.stdout)
    schema = next(t for t in found["tests"] if t["test"] == "schema")
    assert schema["drifted"] and schema["detail"]["missing"] == ["a"]
    assert schema["detail"]["new"] == ["b"]


def test_cli_compare_escapes_html_in_column_names(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>'
    ref, cur, page = tmp_path / "ref.parquet", tmp_path / "cur.parquet", tmp_path / "r.html"
    rng = np.random.default_rng(2)
    pd.DataFrame({evil: rng.normal(size=300)}).to_parquet(ref)
    pd.DataFrame({evil: rng.normal(2, 1, 300)}).to_parquet(cur)
    result = _compare(str(ref), str(cur), "--report", str(page))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    html = page.read_text(encoding="utf-8")
    assert evil not in html and "&lt;script&gt;" in html


def test_cli_report_into_a_missing_folder_or_over_a_file(
    store: list[str],  # noqa: F811
    tmp_path: Path,
) -> None:
    ok(store, *CREATE)
    ok(store, "monitors", "run", "mon", "--at", "2026-12-05T11")
    missing = tmp_path / "no" / "such" / "report.html"
    one_line_error(lw(store, "monitors", "report", "mon", "--output", str(missing)), "cannot write")
    assert not missing.parent.exists()
    existing = tmp_path / "old.html"
    existing.write_text("old", encoding="utf-8")
    ok(store, "monitors", "report", "mon", "--output", str(existing))  # replaced, as `-o` says
    assert "<svg" in existing.read_text(encoding="utf-8")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    one_line_error(lw(store, "monitors", "report", "mon", "--output", str(folder)), "cannot write")


def test_labels_for_an_unknown_deployment_name_shape_are_refused(
    store: list[str],  # noqa: F811
    tmp_path: Path,
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nr0-1,1\n", encoding="utf-8")
    result = lw(store, "labels", "import", str(labels), "--deployment", "../../etc")
    one_line_error(result, "../../etc")


# --- labels through a real server ---------------------------------------------------------------

LABEL_BODIES: list[tuple[str, str]] = [
    ('{"labels": {"r1": NaN}}', "label"),
    ('{"labels": {"r1": Infinity}}', "label"),
    ('{"labels": {"r1": {"nested": [1]}}}', "labels"),
    ('{"labels": {"r1": null}}', "labels"),
    ('{"labels": {"r1": "' + "x" * 5000 + '"}}', "label"),
    ('{"rows": [{"request_id": "r1", "row": -1, "label": 1}]}', "row"),
    ('{"rows": [{"request_id": "r1", "row": "first", "label": 1}]}', "row"),
    ('{"labels": ["r1", 1]}', "labels"),
    ('{"labels": {"r1": 1}, "rows": []}', "either"),
    ('{"labels": {"r1": 1', ""),  # cut off mid-body
    ("not json at all", ""),
]


def test_bad_label_bodies_through_the_server_store_nothing(api: Api) -> None:  # noqa: F811
    headers = {"Authorization": f"Bearer {api.tokens['ed']}", "Content-Type": "application/json"}
    url = f"{api.url}/api/v1/monitoring/labels/{DEPLOYMENT}"
    for body, fragment in LABEL_BODIES:
        answer = httpx.post(url, content=body.encode(), headers=headers, timeout=60)
        assert answer.status_code in (400, 422), (body[:80], answer.text[:300])
        message = answer.json()["message"]
        assert fragment in message and len(message) < 2000, (body[:80], message[:300])
    assert api.vic.monitoring.labels(DEPLOYMENT).empty


def test_a_million_labels_in_one_request_are_refused_whole(api: Api) -> None:  # noqa: F811
    body = {"labels": {f"r-{i}": i % 2 for i in range(1_000_000)}}
    answer = api.call("ed", "POST", f"/labels/{DEPLOYMENT}", json=body)
    message = answer.json()["message"].replace(",", "")
    assert answer.status_code == 400 and "100000" in message, message[:300]
    assert api.vic.monitoring.labels(DEPLOYMENT).empty


# --- label files --------------------------------------------------------------------------------

LABEL_FILES: list[tuple[str, bytes, str]] = [
    ("empty.csv", b"", "cannot be read: No columns to parse"),
    ("header.csv", b"request_id,label\n", "no labels given"),
    ("negrow.csv", b"request_id,label,row\nr1,1,-1\n", "whole numbers in 0..2147483647, e.g. -1"),
    ("frac.csv", b"request_id,label,row\nr1,1,1.5\n", "whole numbers in 0..2147483647, e.g. 1.5"),
    ("big.csv", b"request_id,label,row\nr1,1,99999999999\n", "e.g. 99999999999"),
    ("noid.csv", b"request_id,label\n,1\n", "request id(s) are not strings"),
    ("binary.csv", b"\xff\xfe\x00garbage", "cannot be read: 'utf-8' codec"),
    ("foreign.parquet", b"PAR1xxxx", "cannot be read"),
    ("cols.csv", b"id,y\nr1,1\n", "has no 'request_id' or 'label' column; columns: id, y"),
    ("labels.json", b"{}", "neither Parquet (.parquet, .pq) nor CSV (.csv)"),
]


@pytest.mark.parametrize(
    ("name", "content", "fragment"), LABEL_FILES, ids=[f[0] for f in LABEL_FILES]
)
def test_bad_label_files_are_refused_naming_the_fix(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        read_label_file(path)
    assert fragment in str(caught.value)


def test_a_label_file_that_is_a_folder_or_missing_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").mkdir()
    for path in (tmp_path / "labels.csv", tmp_path / "nope.csv"):
        with pytest.raises(NotFound, match="does not exist \\(or is not a file\\)"):
            read_label_file(path)


# --- user strings in the CLI's output -----------------------------------------------------------

MARKUP = ["[/]", "[red]x", "[link=file:///etc/passwd]y"]


def test_cli_compare_prints_rich_markup_in_column_names_verbatim(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pd.DataFrame({c: rng.normal(size=300) for c in MARKUP}).to_parquet(ref)
    pd.DataFrame({c: rng.normal(2, 1, size=300) for c in MARKUP}).to_parquet(cur)
    result = _compare(str(ref), str(cur))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    for name in MARKUP:
        assert name in result.stdout


def test_cli_monitor_report_escapes_html_from_the_log(tmp_path: Path) -> None:
    """A column name from a deployment's own log (an untrusted client's input keys) reaches
    ``monitors report`` escaped."""
    from datetime import timedelta

    from test_api import AT

    from loopwright.client import Client
    from loopwright.config import resolve_settings
    from loopwright.serving.prediction_log import PredictionLog, PredictionRecord

    evil = "<img src=x onerror=alert(1)>"
    home, blobs = tmp_path / "home", tmp_path / "blobs"
    rng = np.random.default_rng(4)
    folder = tmp_path / "ref"
    folder.mkdir()
    pd.DataFrame({evil: rng.normal(size=500)}).to_parquet(folder / "part.parquet")
    with Client(resolve_settings(home=home, blob_uri=str(blobs), user="ada")) as client:
        client.datasets.add("ref", folder)
    with PredictionLog(str(blobs / "predictions")) as log:
        for i in range(40):
            log.append(
                PredictionRecord(
                    request_id=f"r{i}",
                    deployment=DEPLOYMENT,
                    variant="primary",
                    model="scorer",
                    model_version=1,
                    timestamp=AT - timedelta(seconds=60 * (i + 1)),
                    latency_ms=1.0,
                    status=200,
                    inputs={evil: rng.normal(3, 1, 10)},
                    outputs={"predict": np.zeros(10, dtype=np.int64)},
                )
            )
    options = ["--home", str(home), "--blob-uri", str(blobs)]
    create = ["monitors", "create", "evil", "--deployment", DEPLOYMENT, "--reference", "ref@v1"]
    ok(options, *create)
    ran = ok(options, "monitors", "run", "evil", "--at", AT.isoformat(), "--json")
    assert json.loads(ran.stdout)["status"] == "ok", ran.stdout
    page = tmp_path / "report.html"
    ok(options, "monitors", "report", "evil", "--output", str(page))
    html = page.read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html and "onerror=alert(1)>" not in html
