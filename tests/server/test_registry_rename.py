"""Renaming over HTTP and MLflow's model search from the real mlflow client, on a real server:
the native route and the remote client (names with spaces, aliases named like stages, an editor
refused where the policy protects something in use), and MLflow's registered-models/rename and
search_registered_models (whose client appends the prompt filter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import LiveServer
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import PermissionDenied
from loopwright.registry.entities import ApprovalPolicy
from loopwright.registry.service import RegistryService
from loopwright.store.home import open_store

pytest.importorskip("sklearn")


def _remote(server: LiveServer, user: str, tmp_path: Path) -> Client:
    return Client(
        resolve_settings(
            home=tmp_path / f"{user}-home", server_uri=server.url, token=server.tokens[user]
        )
    )


def test_the_remote_registry_renames_and_resolves_aliases_named_like_stages(
    auth_server: LiveServer, tmp_path: Path
) -> None:
    from sklearn.dummy import DummyClassifier

    embedded = resolve_settings(home=auth_server.home, db_uri=auth_server.db_uri, user="ada")
    with Client(embedded) as local:  # two versions, version 2 in Staging
        with local.start_run(experiment="m") as run:
            run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]))
        registry = local.registry
        registry.create_model("churn v1", policy=ApprovalPolicy(rules=()))
        registry.register("churn v1", run_id=run.id)
        registry.register("churn v1", run_id=run.id)
        registry.transition_stage("churn v1", 2, "Staging")
        registry.create_model("guarded")  # the default policy protects champion
        registry.register("guarded", run_id=run.id)
    with _remote(auth_server, "ada", tmp_path) as ada:
        assert ada.registry.set_alias("churn v1", "staging", 1).applied
        renamed = ada.registry.rename_model("churn v1", "churn v2")
        assert renamed.name == "churn v2" and renamed.aliases == {"staging": 1}
        assert ada.registry.resolve("churn v2", "@staging").version == 1  # the alias
        assert ada.registry.resolve("churn v2", "staging").version == 2  # the stage
        assert ada.registry.get_version("churn v2", 1).ref == "models:/churn v2/1"
        assert ada.registry.set_alias("guarded", "champion", 1).request is not None
    with open_store(auth_server.settings) as store:  # an approver lets champion move
        from loopwright.governance.users import UserService

        UserService(store, actor="boss").add("bob", "approver")
        bob = RegistryService(store, actor="bob")
        (request,) = bob.requests(model="guarded")
        bob.approve(request.id)
    with (
        _remote(auth_server, "ada", tmp_path) as ada,
        pytest.raises(PermissionDenied, match="alias 'champion' protected"),
    ):
        ada.registry.rename_model("guarded", "guarded-2")
    with _remote(auth_server, "boss", tmp_path) as boss:
        assert boss.registry.rename_model("guarded", "guarded-2").aliases == {"champion": 1}


def test_mlflow_s_rename_and_search_from_the_mlflow_client(
    mlflow_client: Any, live_server: LiveServer
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    for name in ("CreateRM 1", "CreateRM 2", "other"):
        client.create_registered_model(name, tags={"team": "risk"} if "1" in name else None)
    with open_store(live_server.settings) as store:  # what mlflow.genai.register_prompt makes
        prompts = RegistryService(store)
        prompts.create_model("greeting", tags={"mlflow.prompt.is_prompt": "true"})
    names = [m.name for m in client.search_registered_models()]
    assert names == ["CreateRM 1", "CreateRM 2", "other"]  # the prompt is left out
    assert [m.name for m in client.search_registered_models("name LIKE 'Create%'")] == [
        "CreateRM 1",
        "CreateRM 2",
    ]
    assert [m.name for m in client.search_registered_models("tag.team != 'x'")] == ["CreateRM 1"]
    page = client.search_registered_models(max_results=1)
    assert [m.name for m in page] == ["CreateRM 1"] and page.token
    client.rename_registered_model("CreateRM 2", "Renamed 2")
    assert client.get_registered_model("Renamed 2").name == "Renamed 2"
    with pytest.raises(MlflowException, match=r"Registered Model with name=CreateRM 2 not found$"):
        client.get_registered_model("CreateRM 2")
    with pytest.raises(MlflowException, match=r"Registered Model \(name=other\) already exists\.$"):
        client.rename_registered_model("Renamed 2", "other")
    with pytest.raises(MlflowException, match=r"Model Version \(name=other, version=9\) not found"):
        client.get_model_version("other", "9")


def test_model_versions_are_ordered_with_mlflow_s_tie_breakers(mlflow_client: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    for name in ("b", "a"):
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, "s3://bucket/model", run_id=None)

    def order(order_by: list[str] | None) -> list[tuple[str, str]]:
        return [(v.name, v.version) for v in client.search_model_versions(order_by=order_by)]

    # Then name ascending, then version descending, unless named.
    assert order(["version_number DESC"]) == [("a", "2"), ("b", "2"), ("a", "1"), ("b", "1")]
    assert order(["name DESC"]) == [("b", "2"), ("b", "1"), ("a", "2"), ("a", "1")]
    assert order(None) == [("a", "2"), ("a", "1"), ("b", "2"), ("b", "1")]  # newest first
    with pytest.raises(Exception, match="duplicate fields"):
        order(["name", "name DESC"])
