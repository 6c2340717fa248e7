"""``client.prediction_log`` on both backends: embedded on the log folder, and remote against a
real server with authentication on (Arrow IPC over /api/v1/predictions), on a local folder and
on S3. The same reads must give the same DataFrames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

import loopwright as lw
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import InvalidInput, LimitExceeded, PermissionDenied
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location
from loopwright.serving.predictions import PredictionService
from test_public_api import live_server

NOW = datetime.now(UTC)
EARLY = (NOW - timedelta(hours=5)).replace(minute=10)  # two closed hours ...
LATER = (NOW - timedelta(hours=3)).replace(minute=20)
FAR = 3600.0


def record(
    request_id: str, at: datetime, deployment: str = "churn", age: int = 40
) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        deployment=deployment,
        variant="primary",
        model="churn-rf",
        model_version=3,
        timestamp=at,
        latency_ms=1.5,
        status=200,
        inputs={"age": [age, age + 1], "plan": ["pro", "free"]},
        outputs={"predict": [1, 0]},
    )


def fill(settings: Settings) -> None:
    """Three requests an hour apart and one of another deployment, in separate files."""
    for request_id, at in (("a", EARLY), ("b", EARLY + timedelta(minutes=5)), ("c", LATER)):
        with PredictionLog(log_location(settings), flush_interval=FAR) as log:
            log.append(record(request_id, at))
    with PredictionLog(log_location(settings), flush_interval=FAR) as log:
        log.append(record("x", LATER, deployment="fraud"))


@dataclass
class Side:
    kind: str
    reader: Client  # a viewer through a server
    admin: Client
    settings: Settings  # the store's (where the log is)


def _tokens(settings: Settings) -> dict[str, str]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    with open_store(settings) as store:
        users = UserService(store, actor="root")
        users.add("root", "admin")
        users.add("vic", "viewer")
        tokens = TokenService(store, actor="root")
        return {name: tokens.create(name).secret for name in ("root", "vic")}


@pytest.fixture(params=["embedded", "remote"])
def side(request: pytest.FixtureRequest, tmp_path: Path, blob_uri: str) -> Iterator[Side]:
    settings = resolve_settings(
        home=tmp_path / "server-home",
        db_uri=f"sqlite:///{tmp_path / 'lw.db'}",
        blob_uri=blob_uri,
    )
    tokens = _tokens(settings)
    fill(settings)
    if request.param == "embedded":
        with Client(settings) as client:
            yield Side("embedded", client, client, settings)
        return
    with (
        live_server(settings) as url,
        lw.connect(url, token=tokens["vic"], home=tmp_path / "vic-home") as reader,
        lw.connect(url, token=tokens["root"], home=tmp_path / "root-home") as admin,
    ):
        yield Side("remote", reader, admin, settings)


def test_reads_give_the_same_frames_on_both_backends(side: Side) -> None:
    direct = PredictionService(log_location(side.settings))
    log = side.reader.prediction_log
    frame = log.read("churn")
    pd.testing.assert_frame_equal(frame, direct.read("churn"))
    assert frame["request_id"].tolist() == ["a", "a", "b", "b", "c", "c"]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert list(frame.columns[:9]) == [
        "request_id", "row", "timestamp", "deployment", "variant", "model", "model_version",
        "latency_ms", "status",
    ]  # fmt: skip
    # client.predictions keeps its signature and reads the same log.
    pd.testing.assert_frame_equal(side.reader.predictions("churn"), frame)
    window = log.read("churn", since=EARLY + timedelta(minutes=1), until=LATER)
    assert window["request_id"].tolist() == ["b", "b"]
    # A relative since, measured at read time: NOW was taken when the module was collected,
    # possibly half an hour before this test runs in a full suite.
    since = datetime.now(UTC) - LATER + timedelta(minutes=1)
    assert log.read("churn", since=since)["request_id"].tolist() == ["c", "c"]
    picked = log.read("churn", columns=["input.age", "request_id"])
    assert list(picked.columns) == ["input.age", "request_id"]
    assert picked["input.age"].tolist() == [40, 41, 40, 41, 40, 41]
    newest = log.read("churn", limit=3)  # the newest three rows, oldest first
    assert list(zip(newest["request_id"], newest["row"], strict=True)) == [
        ("b", 1), ("c", 0), ("c", 1),
    ]  # fmt: skip
    pd.testing.assert_frame_equal(newest, direct.read("churn", limit=3))
    assert log.read("nobody").empty
    assert log.read("nobody", columns=["request_id"]).columns.tolist() == ["request_id"]


def test_deployments_lists_rows_files_and_time_span(side: Side) -> None:
    found = {d.name: d for d in side.reader.prediction_log.deployments()}
    assert sorted(found) == ["churn", "fraud"]
    churn = found["churn"]
    assert (churn.rows, churn.files) == (6, 3)
    assert churn.first == EARLY.replace(microsecond=EARLY.microsecond)
    assert churn.last == LATER
    assert (found["fraud"].rows, found["fraud"].files) == (2, 1)


def test_bad_reads_are_refused_with_the_reason(side: Side) -> None:
    log = side.reader.prediction_log
    with pytest.raises(InvalidInput, match=r"input\.agee.*columns: "):
        log.read("churn", columns=["input.agee"])
    with pytest.raises(InvalidInput, match="limit"):
        log.read("churn", limit=0)
    with pytest.raises(InvalidInput, match="deployment name"):
        log.read("../churn")
    for long in ("0" * 245, "é" * 123):  # past a folder name's 255 bytes with "deployment="
        with pytest.raises(InvalidInput, match="serve it under a shorter name"):
            log.read(long)
        with pytest.raises(InvalidInput, match="serve it under a shorter name"):
            side.admin.prediction_log.compact(long)
    assert log.read("0" * 244).empty  # the longest that fits: nothing logged, no error
    with pytest.raises(InvalidInput, match="since must be"):
        log.read("churn", since="yesterday")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="columns"):
        log.read("churn", columns="request_id")
    with pytest.raises(InvalidInput, match="columns"):
        log.read("churn", columns=[])


def test_compact_and_prune_need_an_admin_through_a_server(side: Side) -> None:
    if side.kind == "remote":
        with pytest.raises(PermissionDenied):
            side.reader.prediction_log.compact()
        with pytest.raises(PermissionDenied):
            side.reader.prediction_log.prune(timedelta(days=1))
    log = side.admin.prediction_log
    before = log.read("churn")
    done = log.compact("churn")
    assert (done.hours, done.files_merged, done.rows) == (1, 2, 4)  # EARLY's two files
    pd.testing.assert_frame_equal(log.read("churn"), before)
    assert {d.name: d.files for d in log.deployments()} == {"churn": 2, "fraud": 1}
    assert log.compact().hours == 0  # nothing left to merge
    gone = log.prune(timedelta(hours=4))  # EARLY's hour ended over four hours ago
    assert (gone.hours, gone.files) == (1, 1)
    assert log.read("churn")["request_id"].unique().tolist() == ["c"]
    with pytest.raises(InvalidInput, match="older_than"):
        log.prune(timedelta(days=-1))
    with pytest.raises(InvalidInput, match="before must be a datetime"):
        log.compact(before="2026-12-05")  # type: ignore[arg-type]


def test_a_read_past_the_servers_row_cap_says_how_to_narrow_it(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    if side.kind == "embedded":
        capped = PredictionService(log_location(side.settings), max_rows=3)
        with pytest.raises(LimitExceeded, match="narrow since / until"):
            capped.read("churn")
        assert len(capped.read("churn", limit=3)) == 3
        with pytest.raises(LimitExceeded, match="limit 4 is past the 3 rows"):
            capped.read("churn", limit=4)
        return
    from loopwright.server.api import predictions as route

    monkeypatch.setattr(route, "MAX_ROWS", 3)  # the server runs in this process
    with pytest.raises(LimitExceeded, match="more than 3 rows"):
        side.reader.prediction_log.read("churn")
    assert side.reader.prediction_log.read("churn", limit=2)["request_id"].tolist() == ["c", "c"]
    assert len(side.reader.prediction_log.read("churn", since=LATER)) == 2
    monkeypatch.setattr(route, "MAX_BYTES", 100)
    with pytest.raises(LimitExceeded, match="pick fewer columns"):
        side.reader.prediction_log.read("churn", limit=2)
    assert len(side.reader.prediction_log.read("churn", limit=2, columns=["row"])) == 2


def test_a_server_client_reads_the_servers_log_not_a_local_one(tmp_path: Path) -> None:
    """With a server configured, `serve` on the client's machine logs under its home unless
    both name the same prediction_log; client.predictions reads the server's log."""
    settings = resolve_settings(home=tmp_path / "server", blob_uri=str(tmp_path / "blobs"))
    with PredictionLog(log_location(settings), flush_interval=FAR) as log:
        log.append(record("on-server", LATER))
    tokens = _tokens(settings)
    with live_server(settings) as url:
        local = resolve_settings(home=tmp_path / "laptop", server_uri=url)
        assert log_location(local) == str(tmp_path / "laptop" / "prediction-log")
        with PredictionLog(log_location(local), flush_interval=FAR) as log:
            log.append(record("on-laptop", LATER))
        with lw.connect(url, token=tokens["vic"], home=tmp_path / "laptop") as client:
            assert set(client.predictions("churn")["request_id"]) == {"on-server"}
    # Naming the same log on both sides: serve writes where the server reads.
    shared = str(tmp_path / "shared-log")
    assert log_location(resolve_settings(server_uri=url, prediction_log=shared)) == shared
    assert log_location(resolve_settings(home=tmp_path / "s", prediction_log=shared)) == shared


def test_times_past_the_calendar_are_bounds_not_errors(side: Side) -> None:
    """An offset that takes a time past year 1 or 9999 in UTC (or a timedelta longer ago than
    year 1) bounds nothing: it was a 500 from the server, an OverflowError embedded."""
    log = side.reader.prediction_log
    first = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    last = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1)))
    assert len(log.read("churn", since=first)) == 6
    assert len(log.read("churn", until=last)) == 6
    assert log.read("churn", since=last).empty
    assert log.read("churn", until=first).empty
    assert len(log.read("churn", since=timedelta(days=10**8))) == 6
    assert log.read("churn", since=-timedelta(days=10**8)).empty
    if side.kind == "remote":  # the server's own parsing, as another client would send it
        http = side.reader.prediction_log._http  # type: ignore[attr-defined]
        for bound in ("since", "until"):
            for moment in (first, last):
                data = http.get_bytes("/predictions/churn", **{bound: moment.isoformat()})
                assert data[:4] == b"\xff\xff\xff\xff"  # an Arrow IPC stream, not an error
    # Pruning the hours that ended before year 1's first hour ended: none.
    admin = side.admin.prediction_log
    since_year_one = datetime.now(UTC) - datetime(1, 1, 1, 0, 30, tzinfo=UTC)
    assert admin.prune(since_year_one).hours == 0
    assert admin.compact(before=first).hours == 0
    assert len(log.read("churn")) == 6


def test_a_read_past_the_byte_cap_stops_at_the_file_that_crosses_it(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.serving._log_files import LogFiles

    opened: list[str] = []
    read_table = LogFiles.read_table

    def counting(self: LogFiles, path: str, columns: list[str] | None = None) -> object:
        opened.append(path)
        return read_table(self, path, columns)

    monkeypatch.setattr(LogFiles, "read_table", counting)
    if side.kind == "embedded":
        log = PredictionService(log_location(side.settings), max_bytes=100)
    else:
        from loopwright.server.api import predictions as route

        monkeypatch.setattr(route, "MAX_BYTES", 100)  # the server runs in this process
        log = side.reader.prediction_log  # type: ignore[assignment]
    with pytest.raises(LimitExceeded, match="pick fewer columns"):
        log.read("churn")
    assert len(opened) == 1  # of the three files: not loaded whole, then refused
    assert len(log.read("churn", columns=["row"], since=LATER)) == 2
