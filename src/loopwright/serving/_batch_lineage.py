"""Lineage of a registered batch-scoring output: the run that produced it and what it read.

With ``register=NAME`` a run in experiment ``batch-scoring`` is started before scoring and
records:

- the input dataset version as its input (``run.use_dataset``, context ``scoring``), when the
  input was a dataset version; a file input is the ``input`` param;
- the model: params ``model_uri``, ``model``, ``model_version``; tags
  ``loopwright.model_version_id`` (the registry's id: ``registry.get_version_by_id``),
  ``loopwright.model_package_hash`` and ``loopwright.model_run_id`` (the run that trained the
  version, the registry's own link) when the registry knows them;
- the output: a new version of dataset NAME whose ``produced_by_run_id`` is the run; the
  version's tags repeat ``model`` and ``input``.

The run is not made the active run; a run active when the job starts (a pipeline's, say)
becomes its parent.

So the chain reads back from the output alone: ``datasets.get("preds@v1").produced_by_run_id``
→ ``get_run(...)``: its tags name the model version; ``datasets.runs_using(input)`` lists it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import Client
    from ..data.entities import DatasetVersion
    from ..tracking import ActiveRun
    from .sources import ModelSource

__all__ = ["EXPERIMENT", "pinned_uri", "register_output", "start_scoring_run"]

EXPERIMENT = "batch-scoring"
SCORING = "scoring"


def start_scoring_run(
    client: Client,
    source: ModelSource,
    input_name: str,
    input_version: DatasetVersion | None,
    settings: dict[str, object],
) -> ActiveRun:
    """The run of a batch-scoring job, with its model and input recorded."""
    version_label = "" if source.version is None else f" v{source.version}"
    tags = {"loopwright.model_uri": source.uri}
    if source.package_hash is not None:
        tags["loopwright.model_package_hash"] = source.package_hash
    registered = _registered(client, source)
    if registered is not None:
        tags["loopwright.model_version_id"] = registered[0]
        if registered[1] is not None:
            tags["loopwright.model_run_id"] = registered[1]
    from .._run_stack import active_run
    from ..tracking import ActiveRun

    # Not made the active run (a job may run inside one, e.g. a pipeline's): that run, if
    # any, becomes its parent.
    parent = active_run()
    created = client.tracking.create_run(
        experiment=EXPERIMENT,
        name=f"predict {source.name}{version_label}",
        tags=tags,
        parent_run_id=None if parent is None else parent.id,
    )
    client.tracking.writer.track(created.id)
    run = ActiveRun(client.tracking, created)
    params: dict[str, object] = {
        "model_uri": source.uri,
        "model": source.name,
        "model_version": "" if source.version is None else source.version,
        "input": input_name,
        **settings,
    }
    try:
        run.log_params(params)
        if input_version is not None:
            run.use_dataset(input_version.id, context=SCORING)
    except BaseException as exc:
        from ..tracking import RunStatus

        run.end(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    return run


def register_output(
    client: Client,
    run: ActiveRun,
    name: str,
    output: Path,
    source: ModelSource,
    input_name: str,
) -> DatasetVersion:
    """Store the output folder as a new version of dataset ``name``, produced by ``run``."""
    model = pinned_uri(source)
    return client.datasets.add(
        name,
        output,
        message=f"predictions of {model} on {input_name}",
        tags={"model": model, "input": input_name},
        run_id=run.id,
    )


def pinned_uri(source: ModelSource) -> str:
    """``models:/churn/3`` for a registry source (the version an alias named), else its URI."""
    name = _registered_name(source)
    return source.uri if name is None else f"models:/{name}/{source.version}"


def _registered(client: Client, source: ModelSource) -> tuple[str, str | None] | None:
    """The registry version's id and training run, for a ``models:/`` source."""
    name = _registered_name(source)
    if name is None or source.version is None:
        return None
    version = client.registry.get_version(name, source.version)
    return version.id, version.run_id


def _registered_name(source: ModelSource) -> str | None:
    from ..registry.loading import parse_model_uri

    if source.version is None:
        return None
    return parse_model_uri(source.uri).name
