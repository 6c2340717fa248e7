"""A server's ``default_approval_policy``, seen from the real mlflow client: with ``protect`` (the
default) moving ``champion`` opens an approval request (PERMISSION_DENIED naming it); a server
started with ``LOOPWRIGHT_DEFAULT_APPROVAL_POLICY=none`` moves it at once, as MLflow does."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import serve
from loopwright.config import resolve_settings


@pytest.mark.parametrize("policy", ["protect", "none"])
def test_champion_moves_as_the_setting_says(
    tmp_path: Path, db_uri: str, policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    environ = {"LOOPWRIGHT_DEFAULT_APPROVAL_POLICY": policy}
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri, environ=environ)
    with serve(settings, auth=False) as url:
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        client.create_registered_model("churn")
        client.create_model_version("churn", "s3://bucket/models/churn", run_id=None)
        if policy == "none":
            client.set_registered_model_alias("churn", "champion", "1")
            assert client.get_registered_model("churn").aliases == {"champion": "1"}
        else:
            with pytest.raises(MlflowException, match="protected by its approval policy"):
                client.set_registered_model_alias("churn", "champion", "1")
            assert client.get_registered_model("churn").aliases == {}
        client.set_registered_model_alias("churn", "candidate", "1")  # never protected
        assert client.get_model_version_by_alias("churn", "candidate").version == "1"
