"""``client.features`` end to end, the same on both backends: embedded (``FeatureStore`` on the
stores) and remote (a real server on 127.0.0.1, auth on, through ``RemoteFeatures``), on SQLite
and PostgreSQL. Definitions apply and version, training sets are point-in-time, the online
store loads and serves, and the unhappy paths raise the same errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import loopwright as lw
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from loopwright.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    to_specs,
)
from test_public_api import live_server

# A day ago, on the hour: online reads apply the TTL (2 days) against the real clock.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def write_stats(folder: Path) -> Path:
    """Driver stats: drivers 1 and 2 at T0 and T0+1h, driver 3 at T0 only."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "driver_id": [1, 2, 3, 1, 2],
            "event_timestamp": [T0, T0, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1)],
            "conv_rate": [0.1, 0.2, 0.3, 0.5, 0.6],
            "trips": [10, 20, 30, 11, 21],
        }
    )
    path = folder / "driver_stats.parquet"
    frame.to_parquet(path, index=False)
    return path


def definitions(stats: Path, *, trips_type: str = "int64", ttl: timedelta | None = None) -> Any:
    driver = Entity("driver", join_keys={"driver_id": "int64"})
    view = FeatureView(
        "driver_stats",
        entities=[driver],
        source=FileSource(str(stats), timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", "float64"), Field("trips", trips_type)],
        ttl=ttl or timedelta(days=2),
    )
    service = FeatureService("driver_model", features=[view])
    return to_specs([driver, view, service])


@dataclass
class Side:
    kind: str
    editor: Client
    viewer: Client
    local: Client  # embedded on the same stores (the server's, for remote)


def _settings(tmp_path: Path, db_uri: str, **extra: Any) -> Settings:
    return resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), **extra
    )


def _tokens(settings: Settings) -> dict[str, str]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    with open_store(settings) as store:
        users = UserService(store, actor="root")
        users.add("root", "admin")
        # The definitions here read local files, which through a server reads the server's
        # disk: an administrator's act (tests/server/test_api_features.py checks an editor's).
        users.add("ed", "admin")
        users.add("vic", "viewer")
        tokens = TokenService(store, actor="root")
        return {name: tokens.create(name).secret for name in ("ed", "vic")}


@pytest.fixture(params=["embedded", "remote"])
def side(request: pytest.FixtureRequest, tmp_path: Path, db_uri: str) -> Iterator[Side]:
    settings = _settings(tmp_path, db_uri)
    if request.param == "embedded":
        with Client(_settings(tmp_path, db_uri, user="ed")) as ed:
            yield Side("embedded", ed, ed, ed)
        return
    tokens = _tokens(settings)
    with (
        live_server(settings) as url,
        Client(_settings(tmp_path, db_uri, user="ed")) as local,
        lw.connect(url, token=tokens["ed"], home=tmp_path / "ed-home") as ed,
        lw.connect(url, token=tokens["vic"], home=tmp_path / "vic-home") as vic,
    ):
        yield Side("remote", ed, vic, local)


def test_definitions_apply_once_version_and_read_the_same(side: Side, tmp_path: Path) -> None:
    specs = definitions(write_stats(tmp_path / "data"))
    plan = side.editor.features.plan(specs)
    assert not plan.applied and [c.change for c in plan.changes] == ["add"] * 3

    applied = side.editor.features.apply(specs)
    assert applied.applied and [(c.kind, c.name, c.to_version) for c in applied.changes] == [
        ("entity", "driver", 1),
        ("feature_view", "driver_stats", 1),
        ("feature_service", "driver_model", 1),
    ]
    again = side.editor.features.apply(specs)  # the same content: a no-op
    assert [c.change for c in again.changes] == ["unchanged"] * 3

    listed = side.viewer.features.list()
    assert listed == side.local.features.list()
    assert [d.name for d in side.viewer.features.list("feature_view")] == ["driver_stats"]
    view = side.viewer.features.get("driver_stats")
    assert view == side.local.features.get("driver_stats@v1") and view.created_by == "ed"
    assert side.viewer.features.get("driver_stats@v1", kind="feature_view") == view
    with pytest.raises(NotFound):
        side.viewer.features.get("driver_stats@v7")

    changed = definitions(tmp_path / "data" / "driver_stats.parquet", ttl=timedelta(days=3))
    side.editor.features.apply(changed)
    versions = side.viewer.features.versions("driver_stats")
    assert [v.version for v in versions] == [2, 1]
    text = side.viewer.features.diff("driver_stats")
    assert text == side.local.features.diff("driver_stats", 1, 2) and "ttl_seconds" in text
    assert side.viewer.features.get("driver_model").version == 2  # it pins the new view


def test_a_breaking_change_needs_force(side: Side, tmp_path: Path) -> None:
    stats = write_stats(tmp_path / "data")
    side.editor.features.apply(definitions(stats))
    breaking = definitions(stats, trips_type="float64")

    plan = side.editor.features.plan(breaking)
    assert [c.name for c in plan.breaking] == ["driver_stats"]
    with pytest.raises(Conflict, match="trips"):
        side.editor.features.apply(breaking)
    assert side.viewer.features.get("driver_stats").version == 1  # nothing applied
    assert side.editor.features.apply(breaking, force=True).applied
    assert side.viewer.features.get("driver_stats").version == 2


def test_unhappy_definitions(side: Side, tmp_path: Path) -> None:
    specs = definitions(write_stats(tmp_path / "data"))
    bad = [dict(specs[0], join_keys=[{"name": "driver_id", "dtype": "complex"}]), *specs[1:]]
    with pytest.raises(InvalidInput, match="driver"):
        side.editor.features.apply(bad)
    with pytest.raises(NotFound):
        side.viewer.features.get("nope")
    with pytest.raises(NotFound):
        side.viewer.features.versions("nope")
    if side.kind == "remote":
        with pytest.raises(PermissionDenied):
            side.viewer.features.apply(specs)


def test_training_sets_are_point_in_time(side: Side, tmp_path: Path) -> None:
    side.editor.features.apply(definitions(write_stats(tmp_path / "data")))
    entities = pd.DataFrame(
        {
            "driver_id": [1, 2, 9, 1],
            "event_timestamp": [
                T0 + timedelta(minutes=30),
                T0 + timedelta(hours=2),
                T0 + timedelta(hours=2),
                T0 - timedelta(minutes=1),
            ],
        }
    )
    found = side.viewer.features.get_historical_features(entities, "driver_model")
    frame = found.to_pandas()
    assert found.rows == 4 and list(frame["driver_id"]) == [1, 2, 9, 1]  # no row dropped
    assert frame["conv_rate"].tolist()[:2] == [0.1, 0.6]
    assert frame["conv_rate"].isna().tolist()[2:] == [True, True]
    assert found.views == {"driver_stats": 1} and found.service == "driver_model@v1"

    by_refs = side.viewer.features.get_historical_features(
        pa.Table.from_pandas(entities), ["driver_stats:trips"], full_feature_names=True
    )
    assert by_refs.columns[-1] == "driver_stats__trips"
    assert by_refs.to_pandas()["driver_stats__trips"].tolist()[:2] == [10, 21]
    local = side.local.features.get_historical_features(entities, ["driver_stats:trips"])
    assert local.to_pandas()["trips"].tolist()[:2] == [10, 21]
    kept = side.viewer.features.get_historical_features(
        entities, "driver_model", dest=tmp_path / "sets" / "a"
    )
    assert kept.path.parent == tmp_path / "sets" / "a" and kept.path.suffix == ".parquet"
    assert [p.name for p in kept.path.parent.iterdir()] == [kept.path.name]  # nothing else

    with pytest.raises(InvalidInput):  # no timestamp column
        side.viewer.features.get_historical_features(entities[["driver_id"]], "driver_model")
    with pytest.raises(NotFound):
        side.viewer.features.get_historical_features(entities, "no_service")


def test_online_store_loads_and_serves(side: Side, tmp_path: Path) -> None:
    side.editor.features.apply(definitions(write_stats(tmp_path / "data")))
    seen: list[int] = []
    loaded = side.editor.features.materialize(end=T0 + timedelta(hours=2), progress=seen.append)
    assert [(m.view, m.rows, m.mode) for m in loaded] == [("driver_stats", 3, "window")]
    assert sum(seen) == 3

    found = side.viewer.features.get_online_features({"driver_id": [1, 3, 7]}, "driver_model")
    assert found.values["conv_rate"][:2] == [0.5, 0.3]
    assert found.statuses["conv_rate"][2] == "not_found"
    assert found == side.local.features.get_online_features(
        [{"driver_id": 1}, {"driver_id": 3}, {"driver_id": 7}], "driver_model"
    )

    pushed = side.editor.features.push(
        "driver_stats",
        [
            {
                "driver_id": 7,
                "event_timestamp": T0 + timedelta(hours=3),
                "conv_rate": 0.9,
                "trips": 1,
            }
        ],
    )
    assert pushed.mode == "push" and pushed.rows == 1
    again = side.viewer.features.get_online_features({"driver_id": [7]}, ["driver_stats:trips"])
    assert again.values["trips"] == [1]

    history = side.viewer.features.materializations()
    assert [m.mode for m in history] == ["push", "window"]
    assert history == side.local.features.materializations()
    assert side.viewer.features.materializations("driver_stats", limit=1) == history[:1]
    fresh = side.viewer.features.freshness()
    assert [f.view for f in fresh] == ["driver_stats"]
    assert fresh[0].newest_event_at == ms(T0 + timedelta(hours=3))

    with pytest.raises(InvalidInput, match="driver_id"):
        side.viewer.features.get_online_features({"rider": [1]}, "driver_model")
    with pytest.raises(NotFound):
        side.viewer.features.get_online_features({"driver_id": [1]}, ["ghost:x"])
    with pytest.raises(InvalidInput):
        side.viewer.features.materializations(limit=0)
    with pytest.raises(InvalidInput, match="end"):
        side.editor.features.materialize(end=10**20)
    with pytest.raises(InvalidInput, match="after end"):
        side.editor.features.materialize(start=T0, end=T0 - timedelta(hours=1))
    if side.kind == "remote":
        with pytest.raises(PermissionDenied):
            side.viewer.features.materialize()
        with pytest.raises(PermissionDenied):
            side.viewer.features.push("driver_stats", [{"driver_id": 1}])


def test_saved_training_set_is_a_dataset_version(side: Side, tmp_path: Path) -> None:
    side.editor.features.apply(definitions(write_stats(tmp_path / "data")))
    entities = pd.DataFrame({"driver_id": [1], "event_timestamp": [T0 + timedelta(hours=1)]})
    found = side.editor.features.get_historical_features(entities, "driver_model")
    with side.editor.start_run(experiment="features") as run:
        version = side.editor.features.save_training_set(found, "train", run_id=run.id)
    assert version.dataset == "train"
    assert side.viewer.get_run(run.id).tags["loopwright.feature_service"] == "driver_model@v1"


def test_skew_of_an_unknown_deployment(side: Side, tmp_path: Path) -> None:
    side.editor.features.apply(definitions(write_stats(tmp_path / "data")))
    with pytest.raises(NotFound, match="ghost"):
        side.viewer.features.skew("ghost")
    with pytest.raises(InvalidInput, match="sample"):
        side.viewer.features.skew("ghost", sample=0)


def test_entity_rows_from_files_and_dataset_versions(side: Side, tmp_path: Path) -> None:
    side.editor.features.apply(definitions(write_stats(tmp_path / "data")))
    # 20,000 rows, past the 64 KiB under which the blob store packs files (offline reads of
    # packed dataset files are builder B's to fix).
    drivers = [2, 1, *np.random.default_rng(0).integers(10, 2**40, 19_998).tolist()]
    entities = pd.DataFrame({"driver_id": drivers, "event_timestamp": T0 + timedelta(hours=2)})
    folder = tmp_path / "entities"
    folder.mkdir()
    entities.to_parquet(folder / "rows.parquet", index=False)
    entities.to_csv(tmp_path / "rows.csv", index=False)
    side.editor.datasets.add("entity_rows", folder)

    for rows in (folder / "rows.parquet", tmp_path / "rows.csv", "entity_rows@v1"):
        found = side.viewer.features.get_historical_features(rows, ["driver_stats:trips"])
        trips = found.to_pandas()["trips"]
        assert trips.tolist()[:2] == [21, 11] and trips[2:].isna().all(), rows
    with pytest.raises(NotFound):
        side.viewer.features.get_historical_features("no_rows@v1", ["driver_stats:trips"])


@pytest.mark.redis
def test_a_client_on_redis_opens_the_online_store_once_and_closes_it(
    tmp_path: Path, db_uri: str, redis_url: str
) -> None:
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user="ed"
    )
    redis_settings = resolve_settings(
        home=tmp_path / "home",
        db_uri=db_uri,
        blob_uri=str(tmp_path / "blobs"),
        user="ed",
        online_store=redis_url,
    )
    with Client(redis_settings) as client:
        client.features.apply(definitions(write_stats(tmp_path / "data")))
        (loaded,) = client.features.materialize(end=T0 + timedelta(hours=2))
        assert loaded.store.startswith("redis://") and loaded.rows == 3
        found = client.features.get_online_features({"driver_id": [2]}, "driver_model")
        assert found.values["conv_rate"] == [0.6]
        features: Any = client.features
        assert features._online is features._online  # opened once
        assert features._online_box and features._owns_online
    assert features._online_box == []  # the client's close() closed and dropped it
    with Client(settings) as other:  # the default store (<home>/online.db) is another one
        missing = other.features.get_online_features({"driver_id": [2]}, "driver_model")
        assert missing.statuses["conv_rate"] == ["not_found"]


def test_timestamp_and_bytes_features_are_served_the_same(side: Side, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    seen = T0 - timedelta(minutes=5, microseconds=7)
    frame = pd.DataFrame(
        {"driver_id": [1], "event_timestamp": [T0], "last_seen": [seen], "badge": [b"\x00\xff"]}
    )
    frame.to_parquet(folder / "extra.parquet", index=False)
    driver = Entity("driver", join_keys={"driver_id": "int64"})
    view = FeatureView(
        "driver_extra",
        entities=[driver],
        source=FileSource(str(folder / "extra.parquet"), timestamp_field="event_timestamp"),
        schema=[Field("last_seen", "timestamp"), Field("badge", "bytes")],
    )
    side.editor.features.apply(to_specs([driver, view]))
    side.editor.features.materialize(end=T0 + timedelta(hours=1))
    refs = ["driver_extra:last_seen", "driver_extra:badge"]
    found = side.viewer.features.get_online_features({"driver_id": [1, 2]}, refs)
    assert found.values["last_seen"] == [seen, None]
    assert found.values["badge"] == [b"\x00\xff", None]
    assert found == side.local.features.get_online_features({"driver_id": [1, 2]}, refs)
