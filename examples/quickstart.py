"""Version the training data, validate it, then train and track three scikit-learn models.

The data (a dataset that ships with scikit-learn) becomes a dataset version with a profile and a
validation result; every run records that version as its input. Autologging records each model's
parameters, training metrics and the fitted model (skops format, no pickle); the script adds
held-out test metrics. Prints the run ids on stdout (progress goes to
stderr) so a shell can pass them on: ``loopwright runs compare $(python examples/quickstart.py)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopwright as lw
from loopwright.data.validation import Suite

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
    client = lw.connect()
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
    best = client.search_runs(
        "tags.dataset = 'breast_cancer'",
        experiments=["quickstart"],
        order_by=["metrics.test_roc_auc DESC"],
        max_results=1,
    )[0]
    print(
        f"best: {best.name} (test ROC AUC {best.metrics['test_roc_auc'].value:.4f})",
        file=sys.stderr,
    )
    client.close()
    return run_ids


if __name__ == "__main__":
    print("\n".join(main()))
