"""Model cards and SBOMs for a registered version, gathered from the registry, runs and datasets.

The builders in :mod:`.card` and :mod:`.sbom` are pure functions over domain objects; this module
collects those objects through a client (the same calls work embedded and, later, remote).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ...client import Client
    from ...data.entities import DatasetVersion
    from ...tracking.entities import Run
    from ..entities import ModelVersion, RegisteredModel
    from .card import ModelCard

__all__ = ["model_card", "model_sbom"]


def _gather(
    client: Client, name: str, version: int | str
) -> tuple[RegisteredModel, ModelVersion, Run | None, list[DatasetVersion], dict[str, Any] | None]:
    registry = client.registry
    model = registry.get_model(name)
    mv = registry.resolve(name, str(version))
    run = None
    environment = None
    if mv.run_id is not None:
        try:
            run = client.tracking.get_run(mv.run_id)
        except NotFound:
            run = None  # deleted since; the card says so
        if run is not None and run.environment_id is not None:
            env = client.tracking.get_environment(run.environment_id)
            environment = {"python_version": env.python_version, "packages": env.packages}
    datasets = [client.datasets.get_by_id(dv_id) for dv_id in mv.dataset_version_ids]
    return model, mv, run, datasets, environment


def model_card(
    client: Client,
    name: str,
    version: int | str,
    *,
    data: Any = None,
    target: str | None = None,
    slices: Sequence[str] = (),
    sensitive: str | None = None,
    positive_label: Any = None,
    trusted: bool = False,
) -> ModelCard:
    """The model card of ``name`` version ``version`` (a number, alias or stage).

    With an evaluation DataFrame ``data`` and its label column ``target``, the card also shows
    metrics computed now by loading the model: overall, per value of each column in ``slices``,
    and fairness metrics across the groups of the ``sensitive`` column.
    """
    from .card import build_card
    from .evaluation import evaluate

    model, mv, run, datasets, environment = _gather(client, name, version)
    approvals = [
        r for r in client.registry.requests(status=None, model=name) if r.version_id == mv.id
    ]
    evaluation = None
    if data is not None:
        if target is None:
            raise InvalidInput("an evaluation DataFrame needs target=<label column>")
        missing = [
            c for c in (target, *slices, *([sensitive] if sensitive else [])) if c not in data
        ]
        if missing:
            raise InvalidInput(
                f"evaluation data lacks column(s) {', '.join(map(repr, missing))}; "
                f"it has {', '.join(map(str, data.columns))}"
            )
        loaded = client.load_model(mv.ref, trusted=trusted)
        features = data.drop(columns=[target])
        predictions = loaded.predict(features)
        evaluation = evaluate(
            data[target].to_numpy(),
            predictions,
            groups={column: data[column].to_numpy() for column in slices} or None,
            sensitive=data[sensitive].to_numpy() if sensitive else None,
            positive_label=positive_label,
        )
    return build_card(
        model,
        mv,
        run=run,
        datasets=datasets,
        approvals=approvals,
        evaluation=evaluation,
        environment=environment,
    )


def model_sbom(
    client: Client, name: str, version: int | str, *, card: ModelCard | None = None
) -> Mapping[str, Any]:
    """A CycloneDX 1.6 ML-BOM of the version: model, training datasets and Python packages."""
    from .sbom import build_sbom

    model, mv, _run, datasets, environment = _gather(client, name, version)
    return build_sbom(
        model,
        mv,
        package_files=client.registry.package_files(mv),
        datasets=datasets,
        environment=environment,
        card=card,
    )
