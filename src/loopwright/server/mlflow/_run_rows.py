"""MLflow Run messages straight from the rows: the hot path of ``runs/search`` and ``runs/get``.

The tracking domain reads the rows as plain tuples (:func:`~loopwright.tracking.run_rows.
read_run_rows`); this builds the messages from them in one pass, about twice as fast as going
through :class:`~loopwright.tracking.entities.Run` and :func:`._convert.run_json`. A test keeps
the two identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...tracking._round_trip import read_all
from ...tracking.run_links import links_from, links_queries, load_links
from ...tracking.run_rows import RunRows, read_run_rows, run_rows_from, run_rows_queries
from .._state import ServerState
from ._convert import RUN_NAME_TAG, double, links_json
from ._uris import run_artifact_uri

__all__ = ["info_json", "runs_json"]

JSON = dict[str, Any]
_ONE_TRIP = 900  # runs read in one round trip on PostgreSQL (the IN lists' chunk)


def info_json(
    run_id: str,
    experiment_id: str,
    name: str,
    user: str | None,
    status: str,
    start: int,
    end: int | None,
    stage: str,
    location: str | None,
) -> JSON:
    """MLflow's ``RunInfo`` from the run's columns (the status as stored: MLflow has no STALE)."""
    info = {
        "run_id": run_id,
        "run_uuid": run_id,
        "run_name": name,
        "experiment_id": experiment_id,
        "user_id": user or "",
        "status": status,
        "start_time": start,
        "end_time": end,
        "artifact_uri": run_artifact_uri(experiment_id, run_id, location),
        "lifecycle_stage": stage,
    }
    if end is None:
        del info["end_time"]
    return info


def _message(rows: RunRows, locations: dict[str, str | None]) -> JSON:
    run_id, experiment_id, name, user, status, start, end, stage, commit = rows.info
    location = locations.get(experiment_id)
    info = info_json(run_id, experiment_id, name, user, status, start, end, stage, location)
    tags = [{"key": key, "value": value} for key, value in rows.tags]
    _default_tags(tags, name, commit)
    return {
        "info": info,
        "data": {
            "metrics": [
                {
                    "key": key,
                    "value": "NaN" if is_nan else double(value),
                    "timestamp": timestamp,
                    "step": step,
                }
                for key, value, is_nan, step, timestamp in rows.metrics
            ],
            "params": [{"key": key, "value": value} for key, value in rows.params],
            "tags": tags,
        },
        "inputs": {"dataset_inputs": [], "model_inputs": []},
        "outputs": {"model_outputs": []},
    }


def runs_json(state: ServerState, run_ids: Sequence[str]) -> list[JSON]:
    """The runs as MLflow ``Run`` messages, in the order of ``run_ids`` (unknown ids left out)."""
    if not run_ids:
        return []
    state.tracking.writer.flush()  # a run's own points are visible to its reads
    db = state.store.db
    if db.dialect == "postgresql" and len(run_ids) <= _ONE_TRIP:
        # runs/get: the run's four reads and its links' two in one round trip.
        ids = list(run_ids)
        results = read_all(db, [*run_rows_queries(ids), *links_queries(ids)])
        rows, links = run_rows_from(*results[:4]), links_from(*results[4:])
        locations = state.tracking._locations_of({r.info[1] for r in rows.values()})
        found = {run_id: _message(r, locations) for run_id, r in rows.items()}
    else:
        with db.one_read():  # one connection and snapshot for the reads below
            rows = read_run_rows(db, run_ids)
            locations = state.tracking._locations_of({r.info[1] for r in rows.values()})
            found = {run_id: _message(r, locations) for run_id, r in rows.items()}
            links = load_links(db, list(found))
    for run_id, linked in links.items():
        if run_id in found:
            found[run_id].update(links_json(linked))
    return [found[run_id] for run_id in run_ids if run_id in found]


def _default_tags(tags: list[JSON], run_name: str, commit: str | None) -> None:
    """The tags MLflow's own server always has (runs made through Loopwright's API lack them)."""
    keys = {tag["key"] for tag in tags}
    if RUN_NAME_TAG not in keys:
        tags.append({"key": RUN_NAME_TAG, "value": run_name})
    if commit and "mlflow.source.git.commit" not in keys:
        tags.append({"key": "mlflow.source.git.commit", "value": commit})
