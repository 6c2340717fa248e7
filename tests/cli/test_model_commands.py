"""``loopwright models`` and ``loopwright users``: every reporting command prints only JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loopwright.client import Client

pytest.importorskip("sklearn")


@pytest.fixture
def as_user(lw: Any) -> Any:
    """``as_user("ada", *args)``: the CLI on the test home as user ada."""
    return lambda user, *args: lw("--user", user, *args)


@pytest.fixture
def as_user_json(lw_json: Any) -> Any:
    return lambda user, *args: lw_json("--user", user, *args)


@pytest.fixture
def logged(client: Client) -> str:
    """A run with a logged scikit-learn package; returns the run id."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] + X["b"] > 0).astype(int)
    with client.start_run(experiment="cli") as run:
        run.log_metric("accuracy", 0.9)
        run.log_model(LogisticRegression().fit(X, y), input_example=X[:3])
    return run.id


def test_register_alias_approve_and_report(
    home: Path, logged: str, as_user: Any, as_user_json: Any
) -> None:
    assert as_user("root", "users", "add", "ada", "--role", "editor").exit_code == 0
    assert as_user("root", "users", "add", "bob", "--role", "approver").exit_code == 0
    users = as_user_json("root", "users", "list")
    assert {u["name"]: u["role"] for u in users} == {"ada": "editor", "bob": "approver"}

    version = as_user_json("ada", "models", "register", "churn", "--run", logged)
    assert (version["version"], version["created_by"]) == (1, "ada")
    assert version["metrics"] == {"accuracy": 0.9}
    assert [m["name"] for m in as_user_json("ada", "models", "list")] == ["churn"]
    assert as_user_json("ada", "models", "show", "churn")["versions"][0]["version"] == 1
    assert len(as_user_json("ada", "models", "versions", "churn")) == 1

    opened = as_user_json("ada", "models", "alias", "churn", "champion", "1")
    assert opened["approval_required"] is True
    request_id = opened["request"]["id"]
    pending = as_user_json("bob", "models", "requests")
    assert [r["id"] for r in pending] == [request_id]

    refused = as_user("ada", "models", "approve", request_id)
    assert refused.exit_code != 0
    assert "registered" in " ".join((refused.stdout + refused.stderr).split())
    approved = as_user_json("bob", "models", "approve", request_id, "--comment", "ok")
    assert approved["status"] == "approved"
    assert as_user_json("ada", "models", "show", "churn")["aliases"] == {"champion": 1}
    assert as_user_json("ada", "models", "requests") == []
    assert len(as_user_json("ada", "models", "requests", "--all")) == 1

    staged = as_user_json("ada", "models", "stage", "churn", "1", "staging")
    assert staged["approval_required"] is False
    assert staged["version"]["stage"] == "Staging"
    production = as_user_json("ada", "models", "stage", "churn", "1", "Production")
    rejected = as_user_json(
        "bob", "models", "reject", production["request"]["id"], "--comment", "not yet"
    )
    assert rejected["status"] == "rejected"
    assert as_user_json("ada", "models", "versions", "churn")[0]["stage"] == "Staging"

    policy = as_user_json(
        "root", "models", "policy", "churn", "--require", "stage:Production=2:approver"
    )
    assert policy["rules"] == [{"target": "stage:Production", "approvals": 2, "role": "approver"}]

    card = as_user("ada", "models", "card", "churn", "champion", "--format", "md")
    assert card.exit_code == 0, card.stdout
    assert "churn" in card.stdout and "bob" in card.stdout
    html_file = home.parent / "card.html"
    written = as_user(
        "ada", "models", "card", "churn", "1", "--format", "html", "-o", str(html_file)
    )
    assert written.exit_code == 0
    assert html_file.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    sbom = as_user("ada", "models", "sbom", "churn", "champion")
    assert sbom.exit_code == 0, sbom.stdout
    document = json.loads(sbom.stdout)
    from loopwright.registry.reports.sbom import validate_sbom

    validate_sbom(document)


def test_versions_without_a_stage_show_an_empty_stage_not_none(
    logged: str, as_user: Any, as_user_json: Any
) -> None:
    assert as_user("root", "users", "add", "ada", "--role", "editor").exit_code == 0
    as_user_json("ada", "models", "register", "churn", "--run", logged)
    as_user_json("ada", "models", "register", "churn", "--run", logged)
    as_user_json("ada", "models", "stage", "churn", "2", "Staging")
    for command in ("show", "versions"):
        shown = as_user("ada", "models", command, "churn")
        assert shown.exit_code == 0, shown.stdout
        stages = {cells[0]: cells[1] for cells in _table_rows(shown.stdout)}
        assert stages == {"1": "", "2": "Staging"}, shown.stdout
        assert "None" not in shown.stdout
    # JSON keeps MLflow's name for the stage
    assert as_user_json("ada", "models", "versions", "churn")[0]["stage"] == "None"


def _table_rows(text: str) -> list[list[str]]:
    """The cells of a Rich table's body rows (those that start with a version number)."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    return [cells for cells in rows if cells and cells[0][:1].isdigit()]


def test_errors_are_clear(logged: str, as_user: Any) -> None:
    missing = as_user("ada", "models", "show", "nope")
    assert missing.exit_code != 0
    assert "nope" in missing.stdout + missing.stderr
    bad_stage = as_user("ada", "models", "stage", "churn", "1", "Live")
    assert bad_stage.exit_code != 0
    bad_rule = as_user("ada", "models", "policy", "churn", "--require", "production")
    assert bad_rule.exit_code != 0


def test_import_an_mlflow_model_folder(
    home: Path, tmp_path: Path, as_user: Any, as_user_json: Any
) -> None:
    import warnings

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame({"x": np.arange(20, dtype=float), "z": np.ones(20)})
    model = LinearRegression().fit(X, 3 * X["x"] + 1)
    folder = tmp_path / "mlflow-model"
    with warnings.catch_warnings():  # MLflow's own warnings on import and save
        warnings.simplefilter("ignore")
        import mlflow.sklearn
        from mlflow.models import infer_signature

        mlflow.sklearn.save_model(
            model,
            str(folder),
            signature=infer_signature(X, model.predict(X)),
            serialization_format="cloudpickle",  # MLflow's old default: a pickle
            pip_requirements=[],
        )
    imported = as_user_json("ada", "models", "import-mlflow", str(folder), "imported")
    assert imported["version"] == 1
    assert [c["name"] for c in imported["signature"]["inputs"]] == ["x", "z"]
    trusted = as_user_json("ada", "models", "import-mlflow", str(folder), "imported", "--trusted")
    assert trusted["version"] == 2
    with _client(home) as client:
        with pytest.raises(PermissionError):
            client.load_model("models:/imported/1")  # still a pickle: needs trusted=True
        safe = client.load_model("models:/imported/2")  # re-saved with skops
        assert list(safe.predict(X[:3])) == pytest.approx(list(model.predict(X[:3])))


def _client(home: Path) -> Client:
    from loopwright.config import resolve_settings

    return Client(resolve_settings(home=home))


def test_rename_moves_the_versions_and_refuses_a_taken_name(
    logged: str, as_user: Any, as_user_json: Any
) -> None:
    as_user_json("ada", "models", "register", "churn", "--run", logged)
    as_user_json("ada", "models", "register", "fraud", "--run", logged)
    renamed = as_user_json("ada", "models", "rename", "churn", "churn v2")
    assert (renamed["name"], renamed["latest_version"]) == ("churn v2", 1)
    assert as_user_json("ada", "models", "show", "churn v2")["versions"][0]["uri"] == (
        "models:/churn v2/1"
    )
    taken = as_user("ada", "models", "rename", "churn v2", "fraud")
    assert taken.exit_code != 0 and "'fraud' already exists" in taken.output
