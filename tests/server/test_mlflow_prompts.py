"""MLflow's prompt registry API, unchanged, against a live ``loopwright server``: prompts land
in Loopwright's prompts (not as models), models stay apart, and the same data reads back
through Loopwright's own API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import loopwright as lw

pytestmark = pytest.mark.filterwarnings("ignore")

LiveServer = Any  # tests/server/conftest.py


def test_register_load_alias_search_and_tags(mlflow_client: Any, live_server: LiveServer) -> None:
    mlflow = mlflow_client
    one = mlflow.genai.register_prompt(
        name="qa",
        template="Answer {{ question }} in {{ language }}.",
        commit_message="first",
        tags={"team": "care"},
        model_config={"model_name": "gpt-4o-mini", "temperature": 0.2},
    )
    two = mlflow.genai.register_prompt(
        name="qa",
        template=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "{{ question }}"},
        ],
        commit_message="chat",
        response_format={"type": "object", "properties": {"answer": {"type": "string"}}},
    )
    assert (one.version, two.version) == (1, 2)
    mlflow.genai.set_prompt_alias("qa", alias="beta", version=1)

    by_version = mlflow.genai.load_prompt("prompts:/qa/1", cache_ttl_seconds=0)
    assert by_version.template == "Answer {{ question }} in {{ language }}."
    assert by_version.format(question="why", language="en") == "Answer why in en."
    assert by_version.commit_message == "first"
    assert by_version.model_config["model_name"] == "gpt-4o-mini"
    by_alias = mlflow.genai.load_prompt("prompts:/qa@beta", cache_ttl_seconds=0)
    assert by_alias.version == 1
    latest = mlflow.genai.load_prompt("prompts:/qa@latest", cache_ttl_seconds=0)
    assert latest.version == 2 and not latest.is_text_prompt
    assert latest.response_format["properties"]["answer"]["type"] == "string"
    assert latest.format(question="why")[1] == {"role": "user", "content": "why"}

    mlflow.genai.set_prompt_alias("qa", alias="beta", version=2)
    assert mlflow.genai.load_prompt("prompts:/qa@beta", cache_ttl_seconds=0).version == 2
    mlflow.genai.delete_prompt_alias("qa", alias="beta")
    # MLflow's wording after its client's translation, which its own prompt tests match.
    with pytest.raises(
        Exception, match=r"Prompt alias beta not found\. Prompt 'qa' has the aliases: none"
    ):
        mlflow.genai.load_prompt("prompts:/qa@beta", cache_ttl_seconds=0)

    mlflow.genai.set_prompt_tag("qa", "owner", "ada")
    mlflow.genai.register_prompt(name="summarize", template="Sum up {{ text }}")
    found = {p.name for p in mlflow.genai.search_prompts()}
    assert found == {"qa", "summarize"}
    assert [p.name for p in mlflow.genai.search_prompts("name LIKE 'sum%'")] == ["summarize"]
    assert mlflow.genai.search_prompts("tags.owner = 'ada'")[0].name == "qa"

    # Stored as Loopwright's prompts, not as models.
    with lw.connect(live_server.db_uri, home=live_server.home) as native:
        prompt = native.prompts.get("qa")
        assert prompt.latest_version == 2
        assert prompt.tags == {"team": "care", "owner": "ada", "_mlflow_experiment_ids": ",0,"}
        assert native.prompts.get_version("qa", 2).commit_message == "chat"
        assert native.prompts.get_version("qa", 1).tags == {"team": "care"}  # MLflow sets both
        assert native.registry.list_models() == []


def test_models_and_prompts_stay_apart(mlflow_client: Any, live_server: LiveServer) -> None:
    mlflow = mlflow_client
    client = mlflow.MlflowClient()
    client.create_registered_model("churn")
    mlflow.genai.register_prompt(name="greet", template="Hi {{ name }}")
    assert [m.name for m in client.search_registered_models()] == ["churn"]
    assert [p.name for p in mlflow.genai.search_prompts()] == ["greet"]
    with pytest.raises(Exception, match="RESOURCE_ALREADY_EXISTS: a prompt is named"):
        client.create_registered_model("greet")
    with pytest.raises(Exception, match="same name"):  # the client checks first
        mlflow.genai.register_prompt(name="churn", template="x")
    versions = client.search_prompt_versions("greet")
    assert [v.version for v in versions] == [1]


def test_protected_aliases_and_immutable_versions(
    mlflow_client: Any, live_server: LiveServer
) -> None:
    mlflow = mlflow_client
    mlflow.genai.register_prompt(name="guarded", template="v1")
    with pytest.raises(Exception, match="approval request"):
        mlflow.genai.set_prompt_alias("guarded", alias="production", version=1)
    with lw.connect(live_server.db_uri, home=live_server.home) as native:
        pending = native.prompts.requests(prompt="guarded")
        assert [(r.target, r.version, r.requested_by) for r in pending] == [
            ("production", 1, "server-admin")
        ]
    client = mlflow.MlflowClient()
    with pytest.raises(Exception, match="immutable"):
        client.delete_prompt_version("guarded", 1)
    with pytest.raises(Exception, match="immutable"):
        client.set_prompt_version_tag("guarded", 1, "mlflow.prompt.text", "changed")
    answer = httpx.get(
        f"{live_server.url}/api/2.0/mlflow/model-versions/get-download-uri",
        params={"name": "guarded", "version": "1"},
    )
    assert answer.status_code == 400 and "no files to download" in answer.json()["message"]
    client.set_prompt_version_tag("guarded", 1, "reviewed", "yes")
    assert mlflow.genai.load_prompt("prompts:/guarded/1").tags["reviewed"] == "yes"
    # Its request is pending: deleting would drop it unseen, an enabled admin's call only.
    with pytest.raises(Exception, match="pending approval request"):
        client.delete_prompt("guarded")
    assert [p.name for p in mlflow.genai.search_prompts()] == ["guarded"]
