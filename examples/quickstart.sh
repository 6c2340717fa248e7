#!/usr/bin/env bash
# Quickstart on the embedded store: version and validate data, train and track three models,
# compare them, register the best, have a second user approve it as champion, load it back.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LOOPWRIGHT_HOME=${LOOPWRIGHT_HOME:-$PWD/.quickstart}

echo "== loopwright init"
loopwright init
echo "== versioning the data, training three models with autologging, promoting the best (examples/quickstart.py)"
mapfile -t run_ids < <(python "$here/quickstart.py")
echo "== loopwright data show breast-cancer"
loopwright data show breast-cancer
echo "== loopwright runs list --experiment quickstart --order-by 'metrics.test_roc_auc DESC'"
loopwright runs list --experiment quickstart --order-by "metrics.test_roc_auc DESC" --limit 3
echo "== loopwright runs compare ${run_ids[*]}"
loopwright runs compare "${run_ids[@]}"
echo "== loopwright runs show ${run_ids[0]}"
loopwright runs show "${run_ids[0]}"
echo "== loopwright models show breast-cancer-classifier"
loopwright models show breast-cancer-classifier
echo "== loopwright models requests --all"
loopwright models requests --all
echo "== a fresh process loads the champion by alias and predicts"
python - <<'PY'
import loopwright as lw
from sklearn.datasets import load_breast_cancer

X = load_breast_cancer(as_frame=True).frame.drop(columns="target")
model = lw.load_model("models:/breast-cancer-classifier@champion")
print(f"breast-cancer-classifier@champion ({model.flavor}) predicts {model.predict(X[:8]).tolist()}")
PY
echo "== loopwright audit verify"
loopwright audit verify
