"""Training sets kept as dataset versions, with lineage to what they were built from.

:func:`save` stores a :class:`~loopwright.features.entities.TrainingSet`'s Parquet file as a
version of a dataset (always as ``training_set.parquet``, so the same rows give the same
version), tagged with the feature service, the view versions and the source dataset versions it
was built from; given a run, the run records the version as a training input and is tagged
with the feature service, which a model version registered from the run takes over.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data.entities import DatasetVersion
    from ..data.protocol import Datasets
    from ..tracking.protocol import Tracking
    from .entities import TrainingSet

__all__ = [
    "FEATURES_TAG",
    "FEATURE_SERVICE_TAG",
    "FEATURE_VIEWS_TAG",
    "FILE_NAME",
    "SOURCES_TAG",
    "lineage_tags",
    "save",
]

FEATURE_SERVICE_TAG = "loopwright.feature_service"  # "svc@v2" (on the dataset and the run)
FEATURE_VIEWS_TAG = "loopwright.feature_views"  # "drivers@v3,customers@v1"
FEATURES_TAG = "loopwright.features"  # the feature refs, without a service
SOURCES_TAG = "loopwright.sources"  # dataset version ids read, comma-separated
FILE_NAME = "training_set.parquet"


def lineage_tags(training_set: TrainingSet) -> dict[str, str]:
    """The dataset tags recording what ``training_set`` was built from."""
    tags = {
        FEATURE_VIEWS_TAG: ",".join(f"{name}@v{v}" for name, v in training_set.views.items()),
        SOURCES_TAG: ",".join(training_set.sources),
    }
    if training_set.service:
        tags[FEATURE_SERVICE_TAG] = training_set.service
    else:
        tags[FEATURES_TAG] = ",".join(training_set.features)
    return tags


def save(
    training_set: TrainingSet,
    dataset: str,
    *,
    datasets: Datasets,
    tracking: Tracking,
    run_id: str | None,
    message: str | None,
) -> DatasetVersion:
    """Store ``training_set`` as a version of ``dataset`` (see the module); with ``run_id``
    the run uses it for training and records the feature service. The run is checked first,
    so an ended or unknown run stores nothing."""
    if run_id is not None:
        tracking.require_loggable(run_id)
    with tempfile.TemporaryDirectory(prefix="loopwright-training-set-") as folder:
        staged = Path(folder) / FILE_NAME
        try:  # the file is not copied where a link will do: training sets are large
            os.link(training_set.path, staged)
        except OSError:
            shutil.copyfile(training_set.path, staged)
        version = datasets.add(
            dataset,
            folder,
            message=message or f"training set of {training_set.service or 'feature refs'}",
            tags=lineage_tags(training_set),
        )
    if run_id is not None:
        tracking.use_dataset(run_id, version.id, "training")
        if training_set.service:
            tracking.set_tags(run_id, {FEATURE_SERVICE_TAG: training_set.service})
    return version
