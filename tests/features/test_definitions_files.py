"""Loading feature definitions from files: Python modules, YAML, folders, and their errors."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from loopwright.client import Client
from loopwright.errors import InvalidInput
from loopwright.features._collect import load_specs
from loopwright.features.definition_store import DefinitionStore
from loopwright.features.definitions import FileSource, file_format

PY = """
from datetime import timedelta
from loopwright.features.definitions import (
    Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, on_demand_feature_view,
)

driver = Entity("driver", join_keys={"driver_id": "int64"})
stats = FeatureView(
    "driver_stats", entities=[driver], ttl=timedelta(hours=1),
    source=FileSource("data/stats.parquet", timestamp_field="event_timestamp"),
    schema=[Field("conv_rate", "float32")],
)


@on_demand_feature_view(
    sources=[stats, RequestSource("req", [Field("val", "float64")])],
    schema=[Field("conv_plus_val", "float64")],
)
def conv_plus(df):
    df["conv_plus_val"] = df["conv_rate"] + df["val"]
    return df


model = FeatureService("driver_model", features=[stats, conv_plus])
"""

YAML = """
entities:
  - name: driver
    join_keys: {driver_id: int64}
feature_views:
  - name: trips
    entities: [driver]
    source: {kind: dataset, dataset: trips@v2, timestamp_field: ts}
    features:
      - {name: count, dtype: int64, default: 0}
feature_services:
  - name: trips_model
    features: ["trips:count"]
"""


def test_a_python_file(tmp_path: Path) -> None:
    path = tmp_path / "features.py"
    path.write_text(PY)
    specs = load_specs(path)
    assert [s["name"] for s in specs] == ["driver", "driver_stats", "conv_plus", "driver_model"]
    assert specs[2]["code"].startswith("def conv_plus(df):")


def test_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text(YAML)
    specs = load_specs(path)
    assert [(s["kind"], s["name"]) for s in specs] == [
        ("entity", "driver"), ("feature_view", "trips"), ("feature_service", "trips_model"),
    ]  # fmt: skip


def test_a_folder_applies_end_to_end(tmp_path: Path, definitions: DefinitionStore) -> None:
    folder = tmp_path / "features"
    (folder / "more").mkdir(parents=True)
    (folder / "a.py").write_text(PY)
    (folder / "more" / "b.yml").write_text(YAML)  # the same driver entity: not a conflict
    (folder / ".hidden.yaml").write_text("{not yaml")
    (folder / "notes.txt").write_text("ignored")
    plan = definitions.apply(load_specs(folder))
    assert len(plan.changed) == 6
    assert definitions.resolve("trips_model").views[0].defaults == {"count": 0}


def test_the_same_name_defined_differently_in_two_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PY)
    (tmp_path / "b.yaml").write_text(YAML.replace("int64}", "string}", 1))
    with pytest.raises(
        InvalidInput, match=r"entity 'driver' is defined differently in .*a\.py and .*b\.yaml"
    ):
        load_specs(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "entities:\n  - name: [driver\n", r"bad\.yaml: is not valid YAML \(line 3"),
        ("bad.yaml", "tables: []\n", "unknown section"),
        ("bad.yaml", "42\n", "must hold a list"),
        ("bad.yaml", "entities: {name: x}\n", "entities must be a list"),
        (
            "bad.py",
            "raise RuntimeError('no database')\n",
            r"bad\.py: fails to import: RuntimeError: no database",
        ),
        (
            "bad.py",
            "import nonexistent_module_xyz\n",
            r"bad\.py: fails to import: ModuleNotFoundError",
        ),
        ("bad.py", PY.replace("(df):", "(df)"), r"bad\.py: fails to import: SyntaxError"),
        ("bad.txt", "", r"is not a \.py, \.yaml or \.yml file"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message):
        load_specs(path)


def test_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_specs(tmp_path / "nope.py")
    with pytest.raises(InvalidInput, match=r"holds no \.py"):
        load_specs(tmp_path)


def test_a_python_file_may_import_its_neighbours(tmp_path: Path) -> None:
    (tmp_path / "entities_here.py").write_text(
        "from loopwright.features.definitions import Entity\n"
        "driver = Entity('driver', join_keys={'driver_id': 'int64'})\n"
    )
    (tmp_path / "views.py").write_text(
        "from entities_here import driver\n"
        "from loopwright.features.definitions import FeatureView, Field, FileSource\n"
        "v = FeatureView('v', entities=[driver], schema=[Field('x', 'int64')],\n"
        "                source=FileSource('x.parquet', timestamp_field='ts'))\n"
    )
    assert [s["name"] for s in load_specs(tmp_path / "views.py")] == ["driver", "v"]


CSV_YAML = """
entities:
  - {name: driver, join_keys: {driver_id: int64}}
feature_views:
  - name: rates
    entities: [driver]
    source: {kind: file, path: "{path}", timestamp_field: ts}
    features: [{name: rate, dtype: float64}]
"""


@pytest.mark.parametrize("name", ["rates.csv", "rates.tsv", "rates.csv.gz", "RATES.CSV"])
def test_a_csv_source_in_yaml_without_a_format_is_read_as_csv(
    tmp_path: Path, client: Client, name: str
) -> None:
    rows = pd.DataFrame(
        {"driver_id": [1, 2], "ts": ["2026-11-01T00:00:00Z"] * 2, "rate": [0.5, 0.25]}
    )
    data = tmp_path / name
    rows.to_csv(data, index=False, sep="\t" if name.endswith(".tsv") else ",")
    path = tmp_path / "features.yaml"
    path.write_text(CSV_YAML.replace("{path}", str(data)))
    specs = load_specs(path)
    assert FileSource(str(data), timestamp_field="ts").spec()["format"] == "csv"  # the same rule
    client.features.apply(specs)
    assert client.features.get("rates").spec["source"]["format"] == "csv"
    entities = pd.DataFrame(
        {"driver_id": [2, 1], "event_timestamp": [datetime(2026, 12, 1, tzinfo=UTC)] * 2}
    )
    found = client.features.get_historical_features(entities, ["rates:rate"]).to_pandas()
    assert found["rate"].tolist() == [0.25, 0.5]


def test_the_format_rule() -> None:
    paths = ("a.pq", "s3://b/x/*.parquet", "a.csv.zst", "a.parquet.gz", "data/", "a.json")
    assert [file_format(p) for p in paths] == ["parquet", "parquet", "csv", None, None, None]


def test_two_folders_with_a_helper_of_one_name_each_use_their_own(tmp_path: Path) -> None:
    for team in ("north", "south"):
        (tmp_path / team).mkdir()
        (tmp_path / team / "common.py").write_text(
            "from loopwright.features.definitions import Entity\n"
            f"unit = Entity('{team}_unit', join_keys={{'unit_id': 'int64'}})\n"
        )
        (tmp_path / team / "views.py").write_text(
            "from common import unit\n"
            "from loopwright.features.definitions import FeatureView, Field, FileSource\n"
            f"v = FeatureView('{team}_stats', entities=[unit], schema=[Field('x', 'int64')],\n"
            "                source=FileSource('x.parquet', timestamp_field='ts'))\n"
        )
    views = {s["name"]: s["entities"] for s in load_specs(tmp_path) if "entities" in s}
    assert views == {"north_stats": ["north_unit"], "south_stats": ["south_unit"]}
    assert "common" not in sys.modules  # loading leaves nothing of the folder behind
