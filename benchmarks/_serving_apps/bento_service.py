"""The serving benchmark's BentoML service (``bentoml serve bento_service:Gbc``).

Runs in benchmarks/.venvs/srv-bentoml with one worker and BentoML's defaults; the model is
the ``gbc:latest`` BentoML saved in ``$BENTOML_HOME`` (see ``save_bento_model``). Body
``{"x": [[20 floats], ...]}``, answer the predictions as a JSON list.
"""

from __future__ import annotations

import sys

import bentoml
import numpy as np


@bentoml.service(workers=1)
class Gbc:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model("gbc:latest")

    @bentoml.api
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


def save_bento_model(path: str) -> None:
    """Stores the joblib model at ``path`` in BentoML's model store as ``gbc``."""
    import joblib

    bentoml.sklearn.save_model("gbc", joblib.load(path))


if __name__ == "__main__":
    save_bento_model(sys.argv[1])
