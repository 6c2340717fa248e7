"""MLflow's ids and artifact URIs for Loopwright's entities.

- Run and experiment ids are Loopwright's own (32 hex digits); MLflow clients treat them as
  opaque strings. The ``Default`` experiment has MLflow's id ``"0"`` (created on first use; an
  older store's Default keeps its hex id, and ``"0"`` names it).
- A LoggedModel is ``m-<32 hex>`` to MLflow and its 32 hex digits in the store.
- An experiment whose ``artifact_location`` is a local folder (see
  :mod:`loopwright.tracking.artifact_locations`) has its runs' artifacts in
  ``<location>/<run_id>/artifacts``; MLflow clients write there themselves, as with
  ``mlflow server --no-serve-artifacts``.
- Otherwise artifacts are served by this server (``mlflow-artifacts:``): a run's under
  ``<experiment_id>/<run_id>/artifacts``, a logged model's under
  ``<experiment_id>/models/m-<id>/artifacts`` and a registered version's MLflow model folder under
  ``model-versions/<version_id>/artifacts``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ...errors import NotFound
from ...tracking.logged_models import logged_model_ref as model_id_out

if TYPE_CHECKING:
    from ...tracking import TrackingService

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "SCHEME",
    "VERSIONS_ROOT",
    "ensure_default",
    "experiment_id_in",
    "experiment_location",
    "logged_model_uri",
    "model_id_in",
    "model_id_out",
    "run_artifact_uri",
    "version_artifact_uri",
]

DEFAULT_EXPERIMENT_ID = "0"
SCHEME = "mlflow-artifacts:"
VERSIONS_ROOT = "model-versions"
_HEX32 = re.compile(r"[0-9a-f]{32}\Z")


def experiment_id_in(tracking: TrackingService, experiment_id: str) -> str:
    """Loopwright's id for an MLflow experiment id (``"0"``: the Default experiment)."""
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        from ...tracking.service import DEFAULT_EXPERIMENT

        return tracking._id_named(DEFAULT_EXPERIMENT)
    return experiment_id


def ensure_default(tracking: TrackingService) -> None:
    """Create the Default experiment if missing: MLflow's server always lists it."""
    experiment_id_in(tracking, DEFAULT_EXPERIMENT_ID)


def model_id_in(model_id: str) -> str:
    """The stored id of a LoggedModel from ``m-<hex>`` (or the bare hex digits)."""
    bare = model_id.removeprefix("m-")
    if not _HEX32.match(bare):
        raise NotFound(f"logged model {model_id!r} does not exist (ids look like m-<32 hex>)")
    return bare


def experiment_location(experiment_id: str, location: str | None = None) -> str:
    """The experiment's own ``location`` (a local folder), else the server's artifact URI."""
    return location or f"{SCHEME}/{experiment_id}"


def run_artifact_uri(experiment_id: str, run_id: str, location: str | None = None) -> str:
    """A run's artifact root: below its experiment's location, as ``mlflow server`` has it."""
    return f"{experiment_location(experiment_id, location)}/{run_id}/artifacts"


def logged_model_uri(experiment_id: str, model_id: str) -> str:
    return f"{SCHEME}/{experiment_id}/models/{model_id_out(model_id)}/artifacts"


def version_artifact_uri(version_id: str) -> str:
    return f"{SCHEME}/{VERSIONS_ROOT}/{version_id}/artifacts"
