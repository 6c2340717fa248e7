"""Issue #5 end to end: train, log, register, approve, promote, load by alias elsewhere, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import loopwright as lw
from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.errors import IntegrityError, InvalidInput, NotFound, PermissionDenied
from loopwright.registry.entities import ApprovalRequest, Stage
from loopwright.registry.loading import parse_model_uri
from loopwright.registry.packaging.signature import SignatureError

pytest.importorskip("sklearn")

NAME = "cancer"


@pytest.fixture
def data() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


@pytest.fixture
def settings(tmp_path: Path, db_uri: str) -> dict[str, str]:
    return {"home": str(tmp_path / "home"), "db_uri": db_uri, "blob_uri": str(tmp_path / "blobs")}


def _connect(settings: dict[str, Any], user: str) -> Client:
    from loopwright.config import resolve_settings

    return Client(resolve_settings(**settings, user=user))


@pytest.fixture
def ada(settings: dict[str, str]) -> Iterator[Client]:
    with _connect(settings, "ada") as client:
        client.users.add("ada", "editor")
        client.users.add("bob", "approver")
        client.users.add("carol", "viewer")
        yield client


@pytest.fixture
def bob(settings: dict[str, str], ada: Client) -> Iterator[Client]:
    with _connect(settings, "bob") as client:
        yield client


def _train_and_log(client: Client, data: tuple[Any, Any]) -> tuple[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    with client.start_run(experiment="e2e") as run:
        run.log_metric("accuracy", float(model.score(X, y)))
        info = run.log_model(model, "model", input_example=X[:5])
    assert info.model_uri == f"runs:/{run.id}/model"
    assert info.flavor == "sklearn"
    return run.id, model


def test_a_model_goes_from_a_run_to_champion_and_is_loaded_in_a_fresh_process(
    ada: Client, bob: Client, settings: dict[str, str], data: tuple[Any, Any]
) -> None:
    X, y = data
    run_id, model = _train_and_log(ada, data)
    version = ada.registry.register(NAME, run_id=run_id)
    assert (version.version, version.created_by, version.flavor) == (1, "ada", "sklearn")
    assert version.metrics["accuracy"] == pytest.approx(model.score(X, y))
    assert version.signature is not None

    request = ada.registry.set_alias(NAME, "champion", 1).request
    assert isinstance(request, ApprovalRequest)
    with pytest.raises(NotFound):
        ada.registry.resolve(NAME, "champion")  # nothing moves before approval
    with pytest.raises(PermissionDenied, match="registered"):
        ada.registry.approve(request.id, comment="my own model")  # separation of duties
    with _connect(settings, "carol") as carol, pytest.raises(PermissionDenied, match="viewer"):
        carol.registry.approve(request.id)
    decided = bob.registry.approve(request.id, comment="metrics reviewed")
    assert decided.status == "approved"
    assert ada.registry.resolve(NAME, "champion").version == 1

    staged = ada.registry.transition_stage(NAME, 1, Stage.PRODUCTION)
    assert isinstance(staged, ApprovalRequest)
    bob.registry.approve(staged.id)
    assert ada.registry.get_version(NAME, 1).stage is Stage.PRODUCTION

    script = (
        "import io, json, sys, loopwright as lw\n"
        "import pandas as pd\n"
        "X = pd.read_json(io.StringIO(sys.stdin.read()), orient='split')\n"
        f"model = lw.load_model('models:/{NAME}@champion')\n"
        "print(json.dumps([int(v) for v in model.predict(X)]))\n"
    )
    env = {
        **os.environ,
        "LOOPWRIGHT_HOME": settings["home"],
        "LOOPWRIGHT_DB_URI": settings["db_uri"],
        "LOOPWRIGHT_BLOB_URI": settings["blob_uri"],
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=X[:20].to_json(orient="split"),
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [int(v) for v in model.predict(X[:20])]

    loaded = ada.load_model(f"models:/{NAME}/Production")
    with pytest.raises(SignatureError, match="mean radius"):
        loaded.predict(X[:3].drop(columns=["mean radius"]))
    wrong = X[:3].astype({"mean texture": str}).assign(**{"mean texture": "thick"})
    with pytest.raises(SignatureError, match="mean texture"):
        loaded.predict(wrong)


def test_log_model_can_register_directly_and_runs_uris_load(
    ada: Client, data: tuple[Any, Any]
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = data
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    with ada.start_run() as run:
        info = run.log_model(model, "clf", input_example=X[:3], registered_model_name="tree")
    assert info.registered_version is not None
    assert info.registered_version.ref == "models:/tree/1"
    by_run = ada.load_model(info.model_uri)
    by_name = ada.load_model("models:/tree/latest")
    assert list(by_run.predict(X[:10])) == list(by_name.predict(X[:10]))
    assert list(by_run.predict(X[:10])) == list(model.predict(X[:10]))


def test_a_tampered_cached_package_is_refused(ada: Client, data: tuple[Any, Any]) -> None:
    run_id, _ = _train_and_log(ada, data)
    ada.registry.register(NAME, run_id=run_id)
    ada.load_model(f"models:/{NAME}/1")  # fills the cache
    cache = Path(ada.store.settings.home) / "cache" / "models"
    (skops_file,) = cache.glob("*/model.skops")
    raw = bytearray(skops_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    skops_file.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=r"model\.skops"):
        ada.load_model(f"models:/{NAME}/1")


def test_an_edited_audit_row_is_named_by_audit_verify(
    ada: Client, bob: Client, settings: dict[str, str], data: tuple[Any, Any]
) -> None:
    run_id, _ = _train_and_log(ada, data)
    ada.registry.register(NAME, run_id=run_id)
    request = ada.registry.set_alias(NAME, "champion", 1).request
    assert isinstance(request, ApprovalRequest)
    bob.registry.approve(request.id)
    cli = ["--home", settings["home"], "--db-uri", settings["db_uri"]]
    cli += ["--blob-uri", settings["blob_uri"]]
    ok = CliRunner().invoke(app, [*cli, "audit", "verify", "--json"])
    assert ok.exit_code == 0, ok.stdout
    log = CliRunner().invoke(app, [*cli, "audit", "log", "--actor", "bob", "--json"])
    actions = [e["action"] for e in json.loads(log.stdout)]
    assert "approval.approve" in actions and "model_alias.set" in actions

    events = sa.table("audit_events", sa.column("seq"), sa.column("actor"), sa.column("action"))
    with ada.store.db.write() as conn:
        seq = conn.execute(
            sa.select(events.c.seq).where(events.c.action == "approval.approve")
        ).scalar_one()
        conn.execute(sa.update(events).where(events.c.seq == seq).values(actor="mallory"))
    broken = CliRunner().invoke(app, [*cli, "audit", "verify", "--json"])
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["broken_seq"] == seq


def test_model_card_and_a_schema_valid_sbom(
    ada: Client, bob: Client, data: tuple[Any, Any]
) -> None:
    from loopwright.registry.reports import model_card, model_sbom
    from loopwright.registry.reports.sbom import validate_sbom

    X, y = data
    dataset = ada.datasets.add("cancer-data", X.assign(target=y), message="all rows")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with ada.start_run() as run:
        run.use_dataset(dataset.id)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
        run.log_model(model, input_example=X[:2])
    ada.registry.register(NAME, run_id=run.id)
    ada.registry.set_card_info(NAME, intended_use="Screening research", limitations="One site")
    request = ada.registry.set_alias(NAME, "champion", 1).request
    assert isinstance(request, ApprovalRequest)
    bob.registry.approve(request.id, comment="fine")

    evaluation = X.assign(target=y, size=(X["mean radius"] > 14).map({True: "big", False: "small"}))
    card = model_card(
        ada,
        NAME,
        "champion",
        data=evaluation.drop(columns=["size"]).assign(size=evaluation["size"]),
        target="target",
        slices=["size"],
        sensitive="size",
    )
    markdown = card.to_markdown()
    assert "Screening research" in markdown and "cancer-data@v1" in markdown
    assert "bob" in markdown  # the approval history
    assert "<svg" in card.to_html()
    assert json.loads(card.to_json())
    sbom = model_sbom(ada, NAME, "champion", card=card)
    validate_sbom(sbom)
    kinds = {c["type"] for c in sbom["components"]}
    assert {"machine-learning-model", "data", "library"} <= kinds


def test_model_uris_are_parsed_strictly() -> None:
    assert parse_model_uri("models:/a/3").ref == "3"
    assert parse_model_uri("models:/a@champion").ref == "@champion"  # only an alias
    assert parse_model_uri("models:/a@production").ref == "@production"
    assert parse_model_uri("models:/a/production").ref == "production"  # a stage
    run = "0" * 32
    assert parse_model_uri(f"runs:/{run}/model").path == "model"
    for bad in ("models:/", "models:/a/b/c", "models:/a@", "runs:/abc/model", "s3://x/y"):
        with pytest.raises(InvalidInput):
            parse_model_uri(bad)
    with pytest.raises(InvalidInput):
        parse_model_uri(f"runs:/{run}/../../etc")


def test_lw_load_model_uses_the_default_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: tuple[Any, Any]
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = data
    monkeypatch.setenv("LOOPWRIGHT_HOME", str(tmp_path / "default-home"))
    from loopwright import _active

    client = _active.default_client(home=tmp_path / "default-home")
    with client.start_run() as run:
        run.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), registered_model_name="dt")
    assert len(lw.load_model("models:/dt/1").predict(X[:4])) == 4
