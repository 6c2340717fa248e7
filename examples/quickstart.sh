#!/usr/bin/env bash
# Quickstart on the embedded store: version and validate data, train and track three models,
# compare them, register the best, have a second user approve it as champion, load it back,
# deploy it behind an endpoint (OIP v2 and MLflow's /invocations), send traffic, watch live
# latency, canary the runner-up at 20 % after its approval, monitor the deployment (a calm batch,
# then a shifted one with late labels: drift and the accuracy drop flagged, an HTML report, the
# canary compared with the primary and rolled back), then close the loop: the drift alert fires a
# retraining pipeline, its model passes the release gate, an approver clears it, a canary on
# labelled traffic is compared with the primary and promoted; lineage walks one prediction back to
# the pipeline, data and trigger. Then read the prediction log back and batch-score the dataset
# with the champion. Last, the feature store: versioned definitions, a point-in-time training
# set, a model that records its feature service, materialized online features, and that model
# served from a customer id alone, equal to the offline features' answer. And LLMs: a prompt
# evaluated on a small dataset, gated, approved into production, served through the gateway,
# and one request's trace walked back to the prompt version, the evaluation and the approver.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z ${LOOPWRIGHT_HOME:-} ]]; then
    # Its own store, made afresh on every run: the quickstart names its models, deployments and
    # loops, so a second run on the same store would find them taken. A home you give is kept.
    export LOOPWRIGHT_HOME=$PWD/.quickstart
    rm -rf "$LOOPWRIGHT_HOME" "$PWD/quickstart-data"
fi

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
echo "== loopwright deployments create breast-cancer-api models:/breast-cancer-classifier@champion"
loopwright deployments create breast-cancer-api "models:/breast-cancer-classifier@champion" \
    --description "The champion behind one endpoint; canaries and alias moves without restarts."
echo "== loopwright serve --deployment breast-cancer-api (OIP v2 and /invocations, following the deployment)"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
loopwright serve --deployment breast-cancer-api --port "$port" --max-batch-size 32 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
burst() {  # burst PORT N: N single-row requests from 8 threads; prints what answered them
python - "$1" "$2" <<'PY'
import collections
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from sklearn.datasets import load_breast_cancer

url, count = f"http://127.0.0.1:{sys.argv[1]}", int(sys.argv[2])
X = load_breast_cancer(as_frame=True).frame.drop(columns="target")
with httpx.Client(base_url=url, timeout=30) as http:
    def one(i: int) -> tuple[int, str]:
        rows = {"dataframe_records": X.iloc[[i % len(X)]].to_dict(orient="records")}
        answer = http.post("/invocations", json=rows)
        return answer.status_code, answer.headers.get("x-loopwright-variant", "?")

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(count)))
    seconds = time.perf_counter() - started
    codes = collections.Counter(code for code, _ in answers)
    variants = collections.Counter(variant for _, variant in answers)
    split = ", ".join(f"{name} {n / count:.0%}" for name, n in sorted(variants.items()))
    print(f"a burst of {count} single-row requests from 8 threads: {codes[200]} answered 200 "
          f"in {seconds:.2f} s ({count / seconds:.0f} requests/s); answered by: {split}")
PY
}
python - "$port" <<'PY'
import sys
import time

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
    answer = http.post("/v2/models/breast-cancer-api/infer", json=body)
    print(f"OIP infer on the deployment (id {answer.json()['id']}, variant "
          f"{answer.headers['x-loopwright-variant']}): {answer.json()['outputs'][0]['data']}")
    split = {"dataframe_split": X.iloc[:5].to_dict(orient="split", index=False)}
    print(f"/invocations: {http.post('/invocations', json=split).json()['predictions']}")
PY
burst "$port" 400
echo "== loopwright deployments show breast-cancer-api (live latency from the serving process)"
loopwright deployments show breast-cancer-api
echo "== a canary: version 2 (the runner-up) takes 20 % of the traffic once bob approves it for live traffic"
python - <<'PY'
import loopwright as lw
from loopwright.errors import PermissionDenied
from loopwright.serving import Variant

NAME, MODEL = "breast-cancer-api", "breast-cancer-classifier"
policy = [Variant("primary", f"models:/{MODEL}@champion", 0.8),
          Variant("canary", f"models:/{MODEL}/2", 0.2)]
with lw.connect(user="ada") as ada:
    try:
        deployment = ada.deployments.set_traffic(NAME, policy)
    except PermissionDenied as refused:
        print(f"refused until approved: {refused}")
        (request,) = [r for r in ada.registry.requests(model=MODEL)  # the one it opened
                      if r.action == "traffic" and r.version == 2]
        with lw.connect(user="bob") as bob:
            bob.registry.approve(request.id, comment="Canary at 20 %, watched.")
        print(f"bob approved request {request.id} ({request.action} for version {request.version})")
        deployment = ada.deployments.set_traffic(NAME, policy)
    shares = ", ".join(f"{v.name} {v.model_uri} {v.weight:.0%}" for v in deployment.live)
    print(f"revision {deployment.revision} ({deployment.strategy}): {shares}")
PY
sleep 2  # the serving process reads the policy every second (--refresh-seconds) and swaps
burst "$port" 1000
loopwright deployments show breast-cancer-api
echo "== monitoring: a monitor on the deployment against the champion's training data (from lineage)"
loopwright monitors create breast-cancer-watch --deployment breast-cancer-api --window 1h \
    --alert "drift_share>=0.2" --alert "accuracy<0.9"
echo "== the loop: a drift alert retrains (examples/quickstart_pipeline.py), the gate checks, an approver clears a 30 % canary, the comparison promotes or rolls back"
cat > "$LOOPWRIGHT_HOME/../quickstart-data/gates.yaml" <<'YAML'
name: breast-cancer-release
dataset: breast-cancer-holdout      # the newest version: labelled cases from today's scanner
target: target
rules:
  - metrics.accuracy >= 0.9
  - metrics.auc >= 0.95
  - latency.p95_ms <= 50
  - vs_champion.accuracy >= -0.01   # no worse than the champion on the same cases
YAML
loopwright loops create breast-cancer-loop --deployment breast-cancer-api \
    --pipeline quickstart_pipeline:retrain --cwd "$here" \
    --gates "$LOOPWRIGHT_HOME/../quickstart-data/gates.yaml" --trigger drift:breast-cancer-watch \
    --canary 30% --canary-window 20s --min-samples 100
send() {  # send PORT PREFIX N SHIFT: N labelled single-row requests (ids PREFIX-i), SHIFT 1 moves
          # three features; writes the true labels of every other request to PREFIX-labels.csv
python - "$@" <<'PY'
import csv
import sys
from pathlib import Path

import httpx
from sklearn.datasets import load_breast_cancer

port, prefix, count, shift = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
frame = load_breast_cancer(as_frame=True).frame
X, y = frame.drop(columns="target"), frame["target"]
if shift:  # the scanner was recalibrated: sizes read 35 % larger, textures grainier
    sizes = {c: 1.35**2 if "area" in c else 1.35 for c in X.columns
             if any(word in c for word in ("radius", "perimeter", "area"))}
    X = X.assign(**{c: X[c] * factor for c, factor in sizes.items()},
                 **{c: X[c] + 6 for c in X.columns if c.endswith("texture")})
labels = Path(f"{prefix}-labels.csv")
with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http, labels.open("w") as out:
    writer = csv.writer(out)
    writer.writerow(["request_id", "label"])
    for i in range(count):
        row = (i * 7) % len(X)
        rows = {"dataframe_records": X.iloc[[row]].to_dict(orient="records")}
        answer = http.post("/invocations", json=rows, headers={"X-Request-Id": f"{prefix}-{i}"})
        answer.raise_for_status()
        if i % 2 == 0:  # labels come back for half of the cases, weeks later
            writer.writerow([f"{prefix}-{i}", int(y.iloc[row])])
print(f"sent {count} {'shifted' if shift else 'unshifted'} requests ({prefix}-0 ...); "
      f"labels for half of them in {labels}")
PY
}
cd "$LOOPWRIGHT_HOME/../quickstart-data"  # the labels files and the report go beside the data
send "$port" calm 300 0
loopwright labels import calm-labels.csv --deployment breast-cancer-api
echo "== loopwright monitors run breast-cancer-watch (traffic like the training data: no drift)"
loopwright monitors run breast-cancer-watch
echo "== a shifted batch arrives, then its labels"
send "$port" shifted 900 1
loopwright labels import shifted-labels.csv --deployment breast-cancer-api
echo "== loopwright monitors run breast-cancer-watch (the shift and the accuracy drop are flagged)"
loopwright monitors run breast-cancer-watch
loopwright monitors alerts --monitor breast-cancer-watch
loopwright monitors report breast-cancer-watch --output quickstart-monitor.html
echo "== loopwright deployments compare breast-cancer-api (canary against primary on the labelled rows)"
loopwright deployments compare breast-cancer-api
echo "== the runner-up's canary is no better: loopwright deployments rollback breast-cancer-api"
loopwright deployments rollback breast-cancer-api
echo "== the recalibrated scanner's labelled cases become data: what retraining learns from, and a holdout for the gate"
python - <<'PY'
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

frame = load_breast_cancer(as_frame=True).frame
sizes = {c: 1.35**2 if "area" in c else 1.35 for c in frame.columns
         if any(word in c for word in ("radius", "perimeter", "area"))}
frame = frame.assign(**{c: frame[c] * factor for c, factor in sizes.items()},
                     **{c: frame[c] + 6 for c in frame.columns if c.endswith("texture")})
train, holdout = train_test_split(frame, test_size=0.3, stratify=frame["target"], random_state=7)
train.to_csv("recalibrated.csv", index=False)
holdout.to_csv("holdout.csv", index=False)
print(f"{len(train)} cases to train on, {len(holdout)} held out")
PY
loopwright data add breast-cancer-recalibrated recalibrated.csv --message "labelled cases, recalibrated scanner"
loopwright data add breast-cancer-holdout holdout.csv --message "held out for the release gate"
echo "== loopwright scheduler --once: the drift alert fires the loop; it retrains, gates, and asks for approval"
loopwright scheduler --once
loopwright loops show breast-cancer-loop
echo "== bob (an approver) clears the candidate for the canary; loopwright loops tick starts it"
request=$(loopwright loops show breast-cancer-loop --json | python -c 'import json, sys; print(json.load(sys.stdin)["iteration"]["approval_request_id"])')
LOOPWRIGHT_USER=bob loopwright models approve "$request" --comment "Gate passed on the recalibrated holdout; canary at 30 %."
loopwright loops tick breast-cancer-loop
sleep 2  # the serving process picks up the new traffic policy
echo "== labelled traffic from the recalibrated scanner reaches both variants"
send "$port" loop 1000 1
loopwright labels import loop-labels.csv --deployment breast-cancer-api
echo "== once the canary window has passed, the loop compares the variants on the labelled rows and decides"
python - <<'PY'
import time

import loopwright as lw
from loopwright.loop import driver

client = lw.connect()
deadline = time.monotonic() + 120
while True:  # what the scheduler does every few seconds: move the iteration on
    (iteration,) = client.loops.iterations("breast-cancer-loop", limit=1)
    iteration = driver.advance(client, iteration.id, owner="quickstart")
    verdict = (iteration.comparison or {}).get("verdict")
    if iteration.state not in ("canary", "comparing") or verdict or time.monotonic() > deadline:
        break
    time.sleep(2)
comparison = iteration.comparison or {}
print(f"iteration {iteration.number}: {iteration.state}; verdict {verdict}: {comparison.get('reason')}")
PY
echo "== promoting moves the protected champion alias: bob approves that too, and the loop completes"
request=$(python -c 'import loopwright as lw; (it,) = lw.connect().loops.iterations("breast-cancer-loop", limit=1); print(it.comparison["waiting_for"])')
LOOPWRIGHT_USER=bob loopwright models approve "$request" --comment "The canary held up on labelled traffic."
loopwright loops tick breast-cancer-loop
loopwright loops history breast-cancer-loop
loopwright deployments show breast-cancer-api
echo "== loopwright lineage: one prediction the canary answered, back to the pipeline, its data, the trigger and the approvals"
answered=$(python - <<'PY'
import loopwright as lw

log = lw.connect().predictions("breast-cancer-api")
print(log[log["request_id"].str.startswith("loop-") & (log["variant"] == "canary")]["request_id"].iloc[0])
PY
)
loopwright lineage "$answered"
cd - >/dev/null
kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
echo "== the prediction log: every request above, read back (client.predictions)"
python - <<'PY'
import loopwright as lw

log = lw.connect().predictions("breast-cancer-api")
print(f"{len(log)} rows from {log['request_id'].nunique()} requests; "
      f"latency P50 {log['latency_ms'].median():.2f} ms, P95 {log['latency_ms'].quantile(0.95):.2f} ms")
for (variant, version), rows in log.groupby(["variant", "model_version"]):
    print(f"  {variant:<8} version {version}: {len(rows)} rows")
PY
echo "== loopwright predict: batch scoring of the dataset version with the champion, registered with its lineage"
loopwright predict "models:/breast-cancer-classifier@champion" breast-cancer@v1 \
    --output "$LOOPWRIGHT_HOME/../quickstart-scores" --overwrite --register breast-cancer-scores
echo "== the feature store: one definition of a customer's features, for training and for serving"
python "$here/quickstart_features.py" data
echo "== loopwright features apply examples/features (versioned by content; a breaking change needs --force)"
loopwright features apply "$here/features"
echo "== a point-in-time training set from the churn_model service; the model trained on it records the service"
python "$here/quickstart_features.py" train
echo "== loopwright features materialize: the newest snapshot per customer into the online store"
loopwright features materialize
loopwright features online --entity customer_id=7,cart_value=120 --service churn_model
echo "== loopwright serve models:/churn-classifier/1: requests carry only a customer id and the cart"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
loopwright serve "models:/churn-classifier/1" --port "$port" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
python "$here/quickstart_features.py" serve "$port"
kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
loopwright features freshness
echo "== LLMs: a prompt through an evaluation gate and an approval, then served by the gateway (examples/quickstart_llm.py)"
llm_out=$(python "$here/quickstart_llm.py")
echo "$llm_out" | sed '$d'
trace=${llm_out##*$'\n'}
echo "== loopwright lineage $trace: one gateway request back to its prompt version, gate, evaluation data and approver"
loopwright lineage "$trace"
echo "== loopwright audit verify"
loopwright audit verify
echo "== the dashboard: everything above, in a browser (each page fetched once here to show it answers)"
if [ -n "${LOOPWRIGHT_SERVER_URI:-}" ]; then
    dashboard="${LOOPWRIGHT_SERVER_URI%/}/ui/"
    opened="$dashboard"
else
    port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    loopwright ui --port "$port" --no-browser &
    ui_pid=$!
    trap 'kill "$ui_pid" 2>/dev/null || true' EXIT
    dashboard="http://127.0.0.1:$port/ui/"
    opened="loopwright ui   (then http://127.0.0.1:5005/ui/)"
fi
python - "$dashboard" <<'PY'
import sys
import time

import httpx

base = sys.argv[1]
deadline = time.monotonic() + 60
while True:
    try:
        httpx.get(base.replace("/ui/", "/health"), timeout=2)
        break
    except httpx.TransportError:
        if time.monotonic() > deadline:
            sys.exit("the dashboard did not answer in 60 s")
        time.sleep(0.2)
with httpx.Client(base_url=base, timeout=30) as http:
    for page in ("", "experiments", "datasets", "models", "approvals", "deployments",
                 "monitoring", "loops", "pipelines", "audit"):
        started = time.perf_counter()
        answer = http.get(page)
        answer.raise_for_status()
        print(f"  /ui/{page:<12} {answer.status_code}  {(time.perf_counter() - started) * 1000:6.1f} ms")
PY
if [ -n "${ui_pid:-}" ]; then
    kill -TERM "$ui_pid"
    wait "$ui_pid" || true
    trap - EXIT
fi
echo "Open the dashboard: $opened"
