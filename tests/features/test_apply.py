"""Applying feature definitions: versions by content, breaking changes, pins, concurrency,
audit events and resolving selections, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from loopwright.config import resolve_settings
from loopwright.errors import Conflict, InvalidInput, NotFound
from loopwright.features.definition_store import DefinitionStore
from loopwright.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    on_demand_feature_view,
    to_specs,
)
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store

driver = Entity("driver", join_keys={"driver_id": "int64"})
source = FileSource("data/stats.parquet", timestamp_field="event_timestamp")


def _view(*fields: Field, ttl: int | None = 3600) -> FeatureView:
    return FeatureView("driver_stats", entities=[driver], source=source, schema=fields, ttl=ttl)


stats = _view(Field("conv_rate", "float32"), Field("trips", "int64", default=0))


@on_demand_feature_view(
    sources=[stats, RequestSource("request", [Field("val", "float64")])],
    schema=[Field("conv_plus_val", "float64")],
)
def conv_plus(df):  # type: ignore[no-untyped-def]
    df["conv_plus_val"] = df["conv_rate"] + df["val"]
    return df


model = FeatureService("driver_model", features=[stats[["conv_rate"]], conv_plus])


def _changes(plan: Any) -> list[tuple[str, str, int | None]]:
    return [(c.name, c.change, c.to_version) for c in plan.changes]


def _rows(store: Store) -> int:
    with store.db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(t.feature_definitions)).scalar_one()
        )


def test_apply_then_reapply_is_a_no_op(definitions: DefinitionStore, store: Store) -> None:
    plan = definitions.plan(to_specs([model]))
    assert not plan.applied and _rows(store) == 0
    assert [c.change for c in plan.changes] == ["add"] * 4
    applied = definitions.apply(to_specs([model]))
    assert applied.applied and _changes(applied) == _changes(plan)
    generation = definitions.generation()
    audited = len(events(store.db, subject_type="feature_definition"))
    again = definitions.apply(to_specs([model]))
    assert [c.change for c in again.changes] == ["unchanged"] * 4 and not again.changed
    assert _rows(store) == 4 and definitions.generation() == generation
    assert len(events(store.db, subject_type="feature_definition")) == audited == 4
    assert verify_chain(store.db).ok


def test_a_changed_view_gives_its_services_new_versions(definitions: DefinitionStore) -> None:
    definitions.apply(to_specs([model]))
    wider = _view(Field("conv_rate", "float32"), Field("trips", "int64", default=0),
                  Field("rating", "float64"))  # fmt: skip
    plan = definitions.apply(to_specs([wider]))
    assert _changes(plan) == [
        ("driver", "unchanged", 1),
        ("driver_stats", "update", 2),
        ("driver_model", "update", 2),
    ]
    assert '+      "name": "rating"' in plan.changes[1].diff
    assert not plan.breaking
    service = definitions.get("driver_model")
    assert service.spec["pins"] == {"conv_plus": 1, "driver_stats": 2}
    assert definitions.get("driver_model@v1").spec["pins"]["driver_stats"] == 1
    assert [d.version for d in definitions.versions("driver_model")] == [2, 1]
    assert '-    "driver_stats": 1' in definitions.diff("driver_model")
    assert definitions.diff("driver_stats", 1, 1) == ""


def test_breaking_changes_need_force(definitions: DefinitionStore, store: Store) -> None:
    definitions.apply(to_specs([model]))
    narrower = _view(Field("conv_rate", "float64"))
    with pytest.raises(Conflict) as refused:
        definitions.apply(to_specs([narrower]))
    message = str(refused.value)
    assert "feature 'conv_rate' changes type float32 -> float64" in message
    assert "feature 'trips' is removed" in message and "--force" in message
    assert _rows(store) == 4  # all or nothing
    plan = definitions.plan(to_specs([narrower]))
    assert [c.name for c in plan.breaking] == ["driver_stats"]
    forced = definitions.apply(to_specs([narrower]), force=True)
    assert ("driver_stats", "update", 2) in _changes(forced)
    events_after = events(store.db, subject_type="feature_definition")
    assert events_after[-2].after["breaking"]


def test_changed_join_keys_are_breaking(definitions: DefinitionStore) -> None:
    definitions.apply(to_specs([driver]))
    with pytest.raises(
        Conflict, match=r"join keys change \(driver_id int64\) -> \(driver_id string\)"
    ):
        definitions.apply(to_specs([Entity("driver", join_keys={"driver_id": "string"})]))


def test_removing_a_feature_a_stored_service_uses_is_refused(
    definitions: DefinitionStore,
) -> None:
    definitions.apply(to_specs([model]))
    without = _view(Field("trips", "int64"))
    with pytest.raises(InvalidInput, match=r"driver_model.*'conv_rate'.*removes"):
        definitions.apply(to_specs([without]), force=True)


def test_get_and_versions_name_what_exists(definitions: DefinitionStore) -> None:
    definitions.apply(to_specs([model]))
    with pytest.raises(NotFound, match=r"'rider' does not exist; known: conv_plus, driver"):
        definitions.get("rider")
    with pytest.raises(NotFound, match="has no v7; v1"):
        definitions.get("driver@v7")
    with pytest.raises(InvalidInput, match="name or name@vN"):
        definitions.get("driver@7")
    for huge in ("99999999999999999999", "2147483648", "9" * 5000):
        with pytest.raises(InvalidInput, match=r"'driver@v\d+(\.\.\.)?': the version is past"):
            definitions.get(f"driver@v{huge}")
    with pytest.raises(NotFound, match="has no v2147483647"):
        definitions.get("driver@v2147483647")  # the largest possible: looked up, not there
    with pytest.raises(InvalidInput, match="kind must be one of"):
        definitions.list("table")  # type: ignore[arg-type]
    assert [d.name for d in definitions.list("feature_view")] == ["driver_stats"]
    assert [d.kind for d in definitions.list()] == [
        "entity", "feature_view", "on_demand_feature_view", "feature_service",
    ]  # fmt: skip


def test_a_view_may_not_share_its_name_with_an_on_demand_view(
    definitions: DefinitionStore,
) -> None:
    definitions.apply(to_specs([model]))
    clash = FeatureView("conv_plus", entities=[driver], source=source, schema=[Field("x", "int64")])
    with pytest.raises(InvalidInput, match="an on demand feature view has this name"):
        definitions.apply(to_specs([clash]))
    odfv = {**definitions.get("conv_plus").spec, "name": "driver_stats"}
    with pytest.raises(InvalidInput, match="a feature view has this name"):
        definitions.apply([odfv])


_more = FeatureView("driver_more", entities=[driver], source=source,
                    schema=[Field("conv_rate", "float64")])  # fmt: skip


@on_demand_feature_view(sources=[stats, _more], schema=[Field("y", "float64")])
def two_views(df):  # type: ignore[no-untyped-def]
    return df.assign(y=df["conv_rate"])


@on_demand_feature_view(
    sources=[RequestSource("request", [Field("trips", "int64")]), stats],
    schema=[Field("y", "float64")],
)
def field_and_view(df):  # type: ignore[no-untyped-def]
    return df.assign(y=df["trips"])


def test_an_on_demand_input_named_twice_is_refused(
    definitions: DefinitionStore, store: Store
) -> None:
    """Training and serving must feed the function the same value: no name may have two."""
    with pytest.raises(
        InvalidInput,
        match="input 'conv_rate' is both a feature of source view 'driver_stats' and a "
        "feature of source view 'driver_more'",
    ):
        definitions.apply(to_specs([two_views]))
    with pytest.raises(InvalidInput, match="'trips' is both a request field and a feature of"):
        definitions.apply(to_specs([field_and_view]))
    assert _rows(store) == 0


def test_a_name_of_two_kinds_needs_a_kind(definitions: DefinitionStore) -> None:
    definitions.apply(to_specs([model, FeatureService("driver", features=[stats])]))
    with pytest.raises(InvalidInput, match="several kinds"):
        definitions.get("driver")
    assert definitions.get("driver", kind="feature_service").kind == "feature_service"


def test_resolve_a_service(definitions: DefinitionStore) -> None:
    definitions.apply(to_specs([model]))
    selection = definitions.resolve("driver_model")
    assert selection.service == "driver_model@v1"
    assert selection.columns == ("conv_rate", "conv_plus_val")
    assert selection.feature_refs == ("driver_stats:conv_rate", "conv_plus:conv_plus_val")
    assert selection.join_keys == (("driver_id", "int64"),)
    assert selection.request_fields == (("val", "float64"),)
    shown, hidden = selection.views
    assert (shown.features, shown.hidden, shown.ttl_seconds) == (
        (("conv_rate", "float32"),), False, 3600,
    )  # fmt: skip
    assert (hidden.features, hidden.defaults, hidden.hidden) == (
        (("trips", "int64"),), {"trips": 0}, True,
    )  # fmt: skip
    (odfv,) = selection.on_demand
    assert (odfv.columns, odfv.sources) == (("conv_plus_val",), ("driver_stats",))


def test_resolve_feature_refs_and_full_names(definitions: DefinitionStore) -> None:
    other = FeatureView(
        "trip_stats", entities=[driver], source=source, schema=[Field("conv_rate", "float64")]
    )
    definitions.apply(to_specs([stats, other]))
    refs = ["driver_stats:*", "trip_stats:conv_rate"]
    with pytest.raises(InvalidInput, match="full_feature_names"):
        definitions.resolve(refs)
    selection = definitions.resolve(refs, full_feature_names=True)
    assert selection.columns == (
        "driver_stats__conv_rate", "driver_stats__trips", "trip_stats__conv_rate",
    )  # fmt: skip
    assert selection.service is None and selection.views[1].ttl_seconds is None
    with pytest.raises(InvalidInput, match="has no feature 'speed'"):
        definitions.resolve(["driver_stats:speed"])
    with pytest.raises(NotFound, match="views: driver_stats, trip_stats"):
        definitions.resolve(["nope:x"])
    with pytest.raises(InvalidInput, match="not view:feature"):
        definitions.resolve(["driver_stats"])
    with pytest.raises(InvalidInput, match="pass a list"):
        definitions.resolve("driver_stats:conv_rate")
    with pytest.raises(InvalidInput, match="list of view:feature refs"):
        definitions.resolve([{"view": "driver_stats"}])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="non-empty list"):
        definitions.resolve([])


def test_resolve_sees_an_apply_and_keeps_pinned_refs(definitions: DefinitionStore) -> None:
    definitions.apply(to_specs([model]))
    assert definitions.resolve("driver_model@v1").views[0].version == 1
    definitions.apply(to_specs([_view(Field("conv_rate", "float32"), Field("trips", "int64"),
                                      Field("rating", "float64"))]))  # fmt: skip
    assert definitions.resolve("driver_model").service == "driver_model@v2"
    assert definitions.resolve("driver_model@v1").views[0].version == 1


def test_resolve_sees_another_process_apply_within_a_second(
    store: Store, definitions: DefinitionStore
) -> None:
    definitions.apply(to_specs([model]))
    reader = DefinitionStore(store)
    assert reader.resolve("driver_model").service == "driver_model@v1"
    definitions.apply(to_specs([_view(Field("conv_rate", "float32"), Field("trips", "int64"))]))
    import time

    time.sleep(1.05)
    assert reader.resolve("driver_model").service == "driver_model@v2"


def test_concurrent_applies_of_one_spec_give_one_version(
    store: Store, definitions: DefinitionStore
) -> None:
    definitions.apply(to_specs([driver]))
    specs = to_specs([stats])
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def apply() -> None:
        try:
            barrier.wait()
            DefinitionStore(store, actor="ada").apply(specs)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [d.version for d in definitions.versions("driver_stats")] == [1]


def _apply_in_process(home: str, db_uri: str, ttl: int, start: Any) -> None:
    settings = resolve_settings(home=Path(home), db_uri=db_uri)
    with open_store(settings) as store:
        start.wait()
        view = _view(Field("conv_rate", "float32"), ttl=ttl)
        DefinitionStore(store, actor="bob").apply(to_specs([view]))


def test_concurrent_processes_with_different_specs_give_two_versions(
    tmp_path: Path, db_uri: str, store: Store, definitions: DefinitionStore
) -> None:
    definitions.apply(to_specs([driver]))
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=_apply_in_process, args=(str(tmp_path / "home"), db_uri, ttl, start))
        for ttl in (60, 120)
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0]
    versions = definitions.versions("driver_stats")
    assert [d.version for d in versions] == [2, 1]
    assert {d.spec["ttl_seconds"] for d in versions} == {60, 120}
    assert {d.created_by for d in versions} == {"bob"}


def test_apply_refuses_malformed_input_without_writing(
    definitions: DefinitionStore, store: Store
) -> None:
    with pytest.raises(InvalidInput, match="list of definition specs"):
        definitions.apply({"kind": "entity"})  # type: ignore[arg-type]
    specs = to_specs([model])
    specs[1]["entities"] = ["rider"]
    with pytest.raises(InvalidInput, match="entity 'rider' does not exist"):
        definitions.apply(specs)
    assert _rows(store) == 0


def test_applied_ttl_of_a_timedelta(definitions: DefinitionStore) -> None:
    view = FeatureView("v", entities=[driver], source=source, schema=[Field("x", "bool")],
                       ttl=timedelta(days=1))  # fmt: skip
    definitions.apply(to_specs([view]))
    assert definitions.get("v").spec["ttl_seconds"] == 86400


def test_diff_of_a_first_version_and_of_unknown_versions(definitions: DefinitionStore) -> None:
    definitions.apply(to_specs([driver]))
    first = definitions.diff("driver")
    assert first.startswith("--- \n+++ driver@v1") and '+  "kind": "entity",' in first
    with pytest.raises(NotFound, match="has no v3; v1"):
        definitions.diff("driver", 1, 3)


def test_audit_events_name_each_applied_version(definitions: DefinitionStore, store: Store) -> None:
    definitions.apply(to_specs([stats]))
    applied = events(store.db, subject_type="feature_definition")
    assert [(e.action, e.actor) for e in applied] == [("feature_definition.apply", "ada")] * 2
    assert [e.after["name"] for e in applied] == ["driver", "driver_stats"]
    assert applied[1].subject_id == definitions.get("driver_stats").id
