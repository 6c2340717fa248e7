#!/usr/bin/env bash
# Quickstart on the embedded store: version and validate data, train and track three models,
# compare them, register the best, have a second user approve it as champion, load it back,
# serve it (OIP v2 and MLflow's /invocations) and read the prediction log back.
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
echo "== loopwright serve models:/breast-cancer-classifier@champion (OIP v2 and /invocations)"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
loopwright serve "models:/breast-cancer-classifier@champion" --port "$port" --max-batch-size 32 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
python - "$port" <<'PY'
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from sklearn.datasets import load_breast_cancer

url = f"http://127.0.0.1:{sys.argv[1]}"
X = load_breast_cancer(as_frame=True).frame.drop(columns="target")
with httpx.Client(base_url=url, timeout=30) as http:
    deadline = time.monotonic() + 60
    while True:
        try:
            if http.get("/v2/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            sys.exit("the model server did not become ready in 60 s")
        time.sleep(0.2)
    meta = http.get("/v2/models/breast-cancer-classifier").json()
    print(f"model {meta['name']} versions {meta['versions']}: {len(meta['inputs'])} inputs")
    row = X.iloc[:1]
    body = {"id": "quickstart-1", "inputs": [
        {"name": c, "datatype": "FP64", "shape": [1], "data": row[c].tolist()} for c in X.columns
    ]}
    answer = http.post("/v2/models/breast-cancer-classifier/infer", json=body).json()
    print(f"OIP infer (id {answer['id']}): {answer['outputs'][0]['data']}")
    split = {"dataframe_split": X.iloc[:5].to_dict(orient="split", index=False)}
    print(f"/invocations: {http.post('/invocations', json=split).json()['predictions']}")

    def one(i: int) -> int:
        rows = {"dataframe_records": X.iloc[[i % len(X)]].to_dict(orient="records")}
        return http.post("/invocations", json=rows).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(400)))
    seconds = time.perf_counter() - started
    print(f"a burst of 400 single-row requests from 8 threads: {codes.count(200)} answered 200 "
          f"in {seconds:.2f} s ({400 / seconds:.0f} requests/s, adaptive batching on)")
PY
kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
echo "== the prediction log: every request above, read back (client.predictions)"
python - <<'PY'
import loopwright as lw

log = lw.connect().predictions("breast-cancer-classifier")
print(f"{len(log)} rows from {log['request_id'].nunique()} requests; "
      f"latency P50 {log['latency_ms'].median():.2f} ms, P95 {log['latency_ms'].quantile(0.95):.2f} ms")
PY
echo "== loopwright audit verify"
loopwright audit verify
