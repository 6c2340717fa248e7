#!/usr/bin/env bash
# Quickstart on the embedded store: version and validate data, train and track three models,
# compare them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LOOPWRIGHT_HOME=${LOOPWRIGHT_HOME:-$PWD/.quickstart}

echo "== loopwright init"
loopwright init
echo "== versioning the data, then training three models with autologging (examples/quickstart.py)"
mapfile -t run_ids < <(python "$here/quickstart.py")
echo "== loopwright data show breast-cancer"
loopwright data show breast-cancer
echo "== loopwright runs list --experiment quickstart --order-by 'metrics.test_roc_auc DESC'"
loopwright runs list --experiment quickstart --order-by "metrics.test_roc_auc DESC" --limit 3
echo "== loopwright runs compare ${run_ids[*]}"
loopwright runs compare "${run_ids[@]}"
echo "== loopwright runs show ${run_ids[0]}"
loopwright runs show "${run_ids[0]}"
