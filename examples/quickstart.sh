#!/usr/bin/env bash
# Quickstart on the embedded store: create a home, log a small training run, show it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LOOPWRIGHT_HOME=${LOOPWRIGHT_HOME:-$PWD/.quickstart}

echo "== loopwright init"
loopwright init
echo "== training and tracking a run (examples/quickstart.py)"
run_id=$(python "$here/quickstart.py")
echo "== loopwright runs show $run_id"
loopwright runs show "$run_id"
echo "== loopwright runs list"
loopwright runs list --experiment quickstart --limit 5
