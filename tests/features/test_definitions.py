"""Feature definitions in Python and their specs: to_specs, on-demand code capture, validation."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopwright.errors import InvalidInput
from loopwright.features._validate import validate
from loopwright.features.definitions import (
    DatasetSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    SqlSource,
    on_demand_feature_view,
    to_specs,
)
from loopwright.features.entities import FeatureDefinition
from loopwright.features.spec import spec_digest

THRESHOLD = 3  # a module-level name an on-demand function may not use

driver = Entity("driver", join_keys={"driver_id": "int64"}, description="a driver")
stats = FeatureView(
    "driver_stats",
    entities=[driver],
    source=FileSource("data/stats.parquet", timestamp_field="event_timestamp"),
    schema=[Field("conv_rate", "float32"), Field("trips", "int64", default=0)],
    ttl=timedelta(hours=2),
)
request = RequestSource("request", [Field("val_to_add", "float64")])


@on_demand_feature_view(sources=[stats, request], schema=[Field("conv_plus_val", "float64")])
def conv_plus(df):  # type: ignore[no-untyped-def]
    import pandas as pd

    out = pd.DataFrame()
    out["conv_plus_val"] = df["conv_rate"] + df["val_to_add"]
    return out


model = FeatureService("driver_model", features=[stats[["conv_rate"]], conv_plus])


def _none(kind: str, name: str) -> FeatureDefinition | None:
    return None


def test_to_specs_includes_references_once_in_dependency_order() -> None:
    specs = to_specs([model, driver, stats])
    assert [(s["kind"], s["name"]) for s in specs] == [
        ("entity", "driver"),
        ("feature_view", "driver_stats"),
        ("on_demand_feature_view", "conv_plus"),
        ("feature_service", "driver_model"),
    ]
    view = specs[1]
    assert view["ttl_seconds"] == 7200
    assert view["source"] == {
        "kind": "file",
        "path": "data/stats.parquet",
        "format": "parquet",
        "timestamp_field": "event_timestamp",
        "created_timestamp_field": None,
    }
    assert specs[3]["features"] == [
        {"view": "driver_stats", "features": ["conv_rate"]},
        {"view": "conv_plus", "features": ["*"]},
    ]


def test_on_demand_code_is_the_function_without_its_decorator() -> None:
    spec = conv_plus.spec()
    assert spec["function"] == "conv_plus"
    assert spec["code"].startswith("def conv_plus(df):")
    assert "@on_demand_feature_view" not in spec["code"]
    assert spec["request_schema"] == [{"name": "val_to_add", "dtype": "float64"}]
    assert spec["sources"] == ["driver_stats"]


def test_on_demand_refuses_lambdas_closures_and_module_names() -> None:
    decorate = on_demand_feature_view(sources=[stats], schema=[Field("x", "float64")])
    with pytest.raises(InvalidInput, match="lambda"):
        decorate(lambda df: df)
    factor = 2

    def nested(df):  # type: ignore[no-untyped-def]
        return df * factor

    with pytest.raises(InvalidInput, match="module level"):
        decorate(nested)
    with pytest.raises(InvalidInput, match=r"'THRESHOLD'.*inside the function"):
        decorate(_uses_module_name)


def _uses_module_name(df):  # type: ignore[no-untyped-def]
    return df * THRESHOLD


def test_sources_and_sql_specs() -> None:
    csv = FileSource("s3://bucket/x/*.csv", timestamp_field="ts", created_timestamp_field="c")
    assert csv.spec()["format"] == "csv"
    assert DatasetSource("trips@v3", timestamp_field="ts").spec()["dataset"] == "trips@v3"
    sql = SqlSource("sqlite:///x.db", table="t", timestamp_field="ts").spec()
    assert (sql["table"], sql["query"]) == ("t", None)


def test_a_view_needs_exactly_one_field_list_and_a_whole_ttl() -> None:
    source = FileSource("x.parquet", timestamp_field="ts")
    with pytest.raises(InvalidInput, match="schema= or features="):
        FeatureView("v", entities=[driver], source=source)
    with pytest.raises(InvalidInput, match="ttl"):
        FeatureView("v", entities=[driver], source=source, schema=[], ttl=1.5)  # type: ignore[arg-type]


def test_two_different_definitions_of_one_name_are_refused() -> None:
    other = Entity("driver", join_keys={"driver_id": "string"})
    with pytest.raises(InvalidInput, match="two different entity definitions"):
        to_specs([driver, other])
    with pytest.raises(InvalidInput, match="not a feature definition"):
        to_specs([driver, "driver"])


def test_validate_normalizes_so_equal_definitions_have_equal_digests() -> None:
    written: list[dict[str, Any]] = [
        {"kind": "entity", "name": "driver", "join_keys": {"driver_id": "int64"}},
        {
            "kind": "feature_view",
            "name": "driver_stats",
            "entities": ["driver"],
            "source": {"kind": "file", "path": "data/stats.parquet", "timestamp_field": "ts"},
            "features": [{"name": "conv_rate", "dtype": "float32"}],
            "ttl_seconds": 0,
        },
    ]
    from_python = to_specs(
        [
            Entity("driver", join_keys=[Field("driver_id", "int64")]),
            FeatureView(
                "driver_stats",
                entities=["driver"],
                source=FileSource("data/stats.parquet", timestamp_field="ts"),
                features=[Field("conv_rate", "float32")],
            ),
        ]
    )
    a, b = validate(written, _none), validate(from_python, _none)
    assert [spec_digest(s) for s in a] == [spec_digest(s) for s in b]
    assert a[1]["ttl_seconds"] is None and a[1]["online"] is True


def _specs() -> list[dict[str, Any]]:
    return to_specs([model])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s[0].update(kind="table"), "kind must be one of"),
        (lambda s: s[0].update(name="bad name"), "not a valid name"),
        (lambda s: s[0].update(name="x" * 201), "at most 200"),
        (lambda s: s[0].update(colour="red"), r"unknown field\(s\) colour"),
        (lambda s: s[0]["join_keys"][0].update(dtype="int128"), "dtype 'int128'"),
        (lambda s: s[0].update(join_keys=[]), "join_keys must be a non-empty list"),
        (lambda s: s[1].update(entities=["rider"]), "entity 'rider' does not exist"),
        (lambda s: s[1].update(ttl_seconds=-1), "ttl_seconds must be"),
        (lambda s: s[1].update(ttl_seconds=10**10 + 1), "for an unlimited TTL use null"),
        (lambda s: s[1]["source"].pop("timestamp_field"), "timestamp_field"),
        (lambda s: s[1]["source"].update(kind="kafka"), "source kind"),
        (lambda s: s[1]["features"][0].update(name="1st"), "identifier"),
        (lambda s: s[1]["features"][0].update(name="__event_ms"), "identifier"),
        (lambda s: s[1]["features"][1].update(default="zero"), "'zero' is not a valid int64"),
        (lambda s: s[1]["features"].append(dict(s[1]["features"][0])), "more than once"),
        (lambda s: s[1]["features"][0].update(name="driver_id"), "join keys"),
        (lambda s: s[2].update(sources=["nope"]), "feature view 'nope' does not exist"),
        (lambda s: s[2].update(code="def conv_plus(:"), "does not parse"),
        (lambda s: s[2].update(function="other"), "does not define function 'other'"),
        (
            lambda s: s[2].update(code="def conv_plus(df):\n    return pd.DataFrame(df)\n"),
            "uses 'pd', which its code does not define or import",
        ),
        (lambda s: s[2].update(code="def conv_plus(a, b):\n    return a\n"), "one DataFrame"),
        (lambda s: s[3]["features"][0].update(features=["speed"]), "has no feature 'speed'"),
        (lambda s: s[3]["features"][0].update(view="nope"), "view 'nope' does not exist"),
        (lambda s: s.append(copy.deepcopy(s[0])), "defined twice in this apply"),
        (lambda s: s[1]["features"][1].update(default=2**63), "is not a valid int64 value"),
        (lambda s: s[1]["features"][0].update(default=float("nan")), "not a valid float32 value"),
        (lambda s: s[0].update(description="x\x00"), "description .* contains a NUL character"),
        (lambda s: s[1].update(tags={"team": 1}), "tag 'team' must be a string"),
        (lambda s: s[1].update(tags={"k" * 251: "v"}), "tag key .* the limit is 250"),
        (lambda s: s[2].update(code="#" * 100_001), "code .* the limit is 100000"),
    ],
)
def test_validate_refuses_naming_definition_and_field(change: Any, message: str) -> None:
    specs = _specs()
    change(specs)
    with pytest.raises(InvalidInput, match=message):
        validate(specs, _none)


def test_code_may_import_at_its_top_level() -> None:
    specs = _specs()
    specs[2]["code"] = (
        "import pandas as pd\nK = 2\n\ndef conv_plus(df):\n    return pd.DataFrame(df * K)\n"
    )
    assert validate(specs, _none)[2]["code"] == specs[2]["code"]


def test_validate_finds_references_among_stored_definitions() -> None:
    stored = {("entity", "driver"): to_specs([driver])[0]}

    def existing(kind: str, name: str) -> FeatureDefinition | None:
        spec = stored.get((kind, name))
        if spec is None:
            return None
        return FeatureDefinition("id", "entity", name, 1, spec_digest(spec), spec, "ada", 0)

    view = [s for s in to_specs([stats]) if s["kind"] == "feature_view"]
    assert validate(view, existing)[0]["entities"] == ["driver"]
    with pytest.raises(InvalidInput, match="entity 'driver' does not exist"):
        validate(view, _none)


def test_validate_refuses_a_view_and_an_on_demand_view_of_one_name() -> None:
    specs = _specs()
    specs[2]["name"] = "driver_stats"
    specs[3]["features"] = [{"view": "driver_stats", "features": ["*"]}]
    with pytest.raises(InvalidInput, match="rename one"):
        validate(specs, _none)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "x", "int64", "ts"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    index=st.integers(0, 3),
    key=st.sampled_from(
        [
            "kind",
            "name",
            "join_keys",
            "entities",
            "source",
            "features",
            "ttl_seconds",
            "online",
            "sources",
            "request_schema",
            "function",
            "code",
            "tags",
            "description",
            "pins",
        ]
    ),
    value=_json,
)
def test_hostile_specs_are_refused_as_invalid_input_or_normalized_to_a_fixed_point(
    index: int, key: str, value: Any
) -> None:
    specs = _specs()
    specs[index][key] = value
    try:
        normalized = validate(specs, _none)
    except InvalidInput:
        return
    assert validate(normalized, _none) == normalized


@given(
    where=st.sampled_from(
        [(0, "join_keys", 0), (1, "source", None), (1, "features", 0), (3, "features", 0)]
    ),
    key=st.sampled_from(["name", "dtype", "default", "kind", "path", "view", "features", "x"]),
    value=_json,
)
def test_hostile_nested_fields_are_refused_as_invalid_input(
    where: tuple[int, str, int | None], key: str, value: Any
) -> None:
    specs = _specs()
    index, field, item = where
    target = specs[index][field] if item is None else specs[index][field][item]
    target[key] = value
    try:
        normalized = validate(specs, _none)
    except InvalidInput:
        return
    assert validate(normalized, _none) == normalized
