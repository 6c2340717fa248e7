"""The quickstart's feature-store part: one definition for training and serving.

    python examples/quickstart_features.py data    version 60 days of customer activity snapshots
    python examples/quickstart_features.py train   a point-in-time training set from the
                                                   churn_model service, a model trained on it
                                                   and registered (it records the service)
    python examples/quickstart_features.py serve PORT
                                                   ask the served model with entity ids only
                                                   and check it against the offline rows

The activity table is made up (seeded): 300 customers, one snapshot a day each, most days.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

import loopwright as lw

DAYS = 60
# Snapshots up to yesterday, so the online store serves them within the view's 7-day TTL.
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
CUSTOMERS = 300
MODEL = "churn-classifier"
FEATURES = ["orders_30d", "spend_30d", "days_since_login", "cart_to_spend"]


def activity() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    rows = []
    for customer in range(1, CUSTOMERS + 1):
        habit = rng.gamma(2.0, 2.0)
        for day in range(DAYS):
            if rng.random() < 0.15:  # no snapshot that day: the point-in-time join looks back
                continue
            orders = int(rng.poisson(habit))
            rows.append(
                {
                    "customer_id": customer,
                    "event_timestamp": START + timedelta(days=day, hours=2),
                    "orders_30d": orders,
                    "spend_30d": round(float(orders * rng.gamma(3.0, 15.0)), 2),
                    "days_since_login": float(rng.integers(0, 20)),
                }
            )
    return pd.DataFrame(rows)


def labels() -> pd.DataFrame:
    """Who churned, observed at a random time for each customer (the entity rows)."""
    rng = np.random.default_rng(12)
    frame = activity()
    times = START + pd.to_timedelta(rng.uniform(10, DAYS, CUSTOMERS), unit="D")
    rows = pd.DataFrame(
        {
            "customer_id": np.arange(1, CUSTOMERS + 1, dtype="int64"),
            "event_timestamp": times,
            "cart_value": rng.gamma(2.0, 30.0, CUSTOMERS).round(2),
        }
    )
    last = frame.groupby("customer_id")["days_since_login"].mean()
    risk = last.reindex(rows["customer_id"]).to_numpy() / 20
    rows["churned"] = (rng.random(CUSTOMERS) < risk).astype("int64")
    return rows


def data() -> None:
    frame = activity()
    version = lw.connect().datasets.add(
        "customer-activity", frame, message="daily activity snapshots"
    )
    print(f"{version.ref}: {len(frame)} snapshots of {CUSTOMERS} customers over {DAYS} days")


def train() -> None:
    from sklearn.linear_model import LogisticRegression

    client = lw.connect()
    rows = labels()
    training = client.features.get_historical_features(rows, "churn_model")
    frame = training.to_pandas()
    features = FEATURES
    missing = int(frame[features].isna().any(axis=1).sum())
    print(
        f"training set from {training.service}: {training.rows} rows, every label row kept "
        f"({missing} without a snapshot in the 7-day TTL, filled with the defaults)"
    )
    frame = frame.fillna({"days_since_login": 30.0}).dropna(subset=features)
    with client.start_run(experiment="churn", name="churn-from-features") as run:
        saved = client.features.save_training_set(training, "churn-training", run_id=run.id)
        model = LogisticRegression(max_iter=1000).fit(frame[features], frame["churned"])
        run.log_metric("train_accuracy", float(model.score(frame[features], frame["churned"])))
        run.log_model(model, "model", input_example=frame[features].head(3))
    version = client.registry.register(MODEL, run_id=run.id)
    print(
        f"{MODEL} version {version.version} trained on {saved.ref}; "
        f"it records feature service {version.tags.get('loopwright.feature_service')}"
    )


def serve(port: int) -> None:
    import httpx

    client = lw.connect()
    records = [
        {"customer_id": 7, "cart_value": 120.0},
        {"customer_id": 42, "cart_value": 15.5},
        {"customer_id": 99, "cart_value": 60.0},
    ]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        deadline = time.monotonic() + 60
        while True:  # the server loads the model first
            try:
                if http.get("/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the model server did not become ready in 60 s")
            time.sleep(0.2)
        answer = http.post("/invocations", json={"dataframe_records": records})
        answer.raise_for_status()
        served = answer.json()["predictions"]
    # Offline: the point-in-time features of the same customers as of now, through the model.
    now = pd.DataFrame(records).assign(event_timestamp=pd.Timestamp.now(tz="UTC"))
    frame = client.features.get_historical_features(now, "churn_model").to_pandas()
    model = lw.load_model(f"models:/{MODEL}/latest")
    offline = model.predict(frame[FEATURES]).tolist()
    ids = [record["customer_id"] for record in records]
    print(f"served from the customer id and cart alone: customers {ids} -> {served}")
    print(f"the offline store's features as of now, through the same model -> {offline}")
    if served != offline:
        raise SystemExit("served predictions differ from the offline ones")


if __name__ == "__main__":
    {"data": lambda: data(), "train": lambda: train(), "serve": lambda: serve(int(sys.argv[2]))}[
        sys.argv[1]
    ]()
