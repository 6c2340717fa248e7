"""Version the data, train and track three models, then register, approve and load the best.

The data (a dataset that ships with scikit-learn) becomes a dataset version with a profile and a
validation result; every run records that version as its input. Autologging records each model's
parameters, training metrics and the fitted model (a package in skops format, no pickle); the
script adds held-out test metrics. The best run's model is registered by "ada"; pointing the
protected ``champion`` alias at it opens an approval request, which "bob" (an approver) approves.
The champion is then loaded by alias and predicts, and its model card and ML-BOM are written.
Prints the run ids on stdout (progress goes to stderr) so a shell can pass them on:
``loopwright runs compare $(python examples/quickstart.py)``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopwright as lw
from loopwright.data.validation import Suite
from loopwright.errors import AlreadyExists, SignatureError
from loopwright.registry.reports import model_card, model_sbom

MODEL_NAME = "breast-cancer-classifier"

MODELS = {
    "logistic-regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.5)),
    "random-forest": lambda: RandomForestClassifier(n_estimators=200, max_depth=6, random_state=0),
    "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=150, random_state=0),
}


SUITE = (
    Suite("breast-cancer-checks")
    .row_count_between(min=500)
    .not_null("mean radius")
    .between("mean radius", min=0, max=50)
    .in_set("target", [0, 1])
)


def main() -> list[str]:
    client = lw.connect(user="ada")
    frame = load_breast_cancer(as_frame=True).frame
    data_file = Path(client.settings.home).parent / "quickstart-data" / "breast_cancer.csv"
    data_file.parent.mkdir(exist_ok=True)
    frame.to_csv(data_file, index=False)
    dataset = client.datasets.add("breast-cancer", data_file, message="from scikit-learn")
    report = client.datasets.validate(dataset, SUITE)
    verdict = "passed" if report.success else "FAILED"
    print(f"data: {dataset.ref}, {frame.shape[0]} rows, validation {verdict}", file=sys.stderr)

    X, y = frame.drop(columns="target"), frame["target"]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=42
    )
    lw.autolog(client_factory=lambda: client)
    run_ids = []
    for name, build in MODELS.items():
        with client.start_run(
            experiment="quickstart", name=name, tags={"dataset": "breast_cancer"}
        ) as run:
            run.use_dataset(dataset.id)
            model = build().fit(X_train, y_train)
            scores = model.predict_proba(X_test)[:, 1]
            predicted = model.predict(X_test)
            run.log_metrics(
                {
                    "test_accuracy": accuracy_score(y_test, predicted),
                    "test_f1": f1_score(y_test, predicted),
                    "test_roc_auc": roc_auc_score(y_test, scores),
                }
            )
        auc = client.get_run(run.id).metrics["test_roc_auc"].value
        print(f"{name:<20} test ROC AUC {auc:.4f}  run {run.id}", file=sys.stderr)
        run_ids.append(run.id)
    lw.autolog(disable=True)
    best, runner_up = client.search_runs(
        "tags.dataset = 'breast_cancer'",
        experiments=["quickstart"],
        order_by=["metrics.test_roc_auc DESC"],
        max_results=2,
    )
    print(
        f"best: {best.name} (test ROC AUC {best.metrics['test_roc_auc'].value:.4f})",
        file=sys.stderr,
    )
    promote(client, best.id, X_test, y_test, data_file.parent)
    # The runner-up is registered too: the canary the served deployment tries later.
    second = client.registry.register(MODEL_NAME, run_id=runner_up.id)
    print(f"registered {second.ref} ({runner_up.name}), the canary to come", file=sys.stderr)
    client.close()
    return run_ids


def promote(
    client: lw.Client, run_id: str, X_test: pd.DataFrame, y_test: pd.Series, out: Path
) -> None:
    """Register the best run's model, have a second user approve it as champion, load it back."""
    for user, role in (("ada", "editor"), ("bob", "approver")):
        with contextlib.suppress(AlreadyExists):  # a second quickstart in the same home
            client.users.add(user, role)
    registry = client.registry
    version = registry.register(MODEL_NAME, run_id=run_id)
    registry.update_model(MODEL_NAME, description="Flags malignant tumours in cell measurements.")
    registry.set_card_info(
        MODEL_NAME,
        intended_use="Teaching example: ranks biopsies for a second look by a pathologist.",
        limitations="Trained on 569 cases from one hospital (Wisconsin, 1995); not for diagnosis.",
    )
    print(f"registered {version.ref} by ada", file=sys.stderr)
    request = registry.set_alias(MODEL_NAME, "champion", version.version).request
    assert request is not None  # champion is protected by the default policy: a request
    print(f"champion needs approval: request {request.id}", file=sys.stderr)
    with lw.connect(user="bob") as bob:
        bob.registry.approve(request.id, comment="Test metrics reviewed; fine for the demo.")
    print(f"bob approved: {MODEL_NAME}@champion -> v{version.version}", file=sys.stderr)

    champion = client.load_model(f"models:/{MODEL_NAME}@champion")
    sample = X_test[:5]
    print(f"champion predicts {champion.predict(sample).tolist()} for 5 test rows", file=sys.stderr)
    try:
        champion.predict(sample.drop(columns=["mean radius"]))
    except SignatureError as exc:
        print(f"a wrong input is refused: {exc}", file=sys.stderr)

    evaluation_data = X_test.assign(target=y_test)
    card = model_card(client, MODEL_NAME, "champion", data=evaluation_data, target="target")
    (out / "model-card.md").write_text(card.to_markdown(), encoding="utf-8")
    (out / "model-card.html").write_text(card.to_html(), encoding="utf-8")
    sbom = model_sbom(client, MODEL_NAME, "champion", card=card)
    (out / "model-sbom.cdx.json").write_text(json.dumps(sbom, indent=2), encoding="utf-8")
    print(f"model card and SBOM written to {out}", file=sys.stderr)


if __name__ == "__main__":
    print("\n".join(main()))
