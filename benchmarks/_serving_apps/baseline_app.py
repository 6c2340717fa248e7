"""The serving benchmark's baseline: the model behind a minimal FastAPI app (``async def``).

Runs in benchmarks/.venvs/srv-baseline under ``uvicorn baseline_app:app --workers 1`` (uvloop
and httptools, from ``uvicorn[standard]``); the model file is ``$BENCH_MODEL`` (joblib).
Body ``{"instances": [[20 floats], ...]}``, answer ``{"predictions": [...]}``.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["BENCH_MODEL"])
app = FastAPI()


class Instances(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
async def predict(body: Instances) -> dict[str, list[int]]:
    return {"predictions": model.predict(np.asarray(body.instances)).tolist()}
