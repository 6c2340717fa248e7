"""An evaluation summary sent to a server, rebuilt from what the server holds.

A remote client runs its target and scorers itself, then sends the run's summary. Evaluation
gates read that summary, so the server does not take its figures from the caller: it reads the
per-row results the run logged (``eval_results.jsonl``), checks that they cover exactly the
records of the dataset version the run names, that every scorer described as a registered
version (``name/N kind digest``) is that version, and computes the aggregates, row and failure
counts itself. What it cannot check is that the client's scorers really produced those rows: a
gate that must not trust the caller's process uses an evaluation by an embedded client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._numbers import is_number
from ..errors import InvalidInput, NotFound
from .entities import Feedback, RowResult

if TYPE_CHECKING:
    from .service import EvaluationService

__all__ = ["Summary", "summary_from_results"]

_MAX_RESULTS = 256 << 20  # bytes of a run's results file the server reads


@dataclass(frozen=True)
class Summary:
    aggregates: dict[str, float]
    rows: int
    failed_rows: int


def summary_from_results(
    service: EvaluationService,
    run_id: str,
    dataset_version_id: str | None,
    scorers: Mapping[str, str],
) -> Summary:
    """The summary of run ``run_id`` computed from its logged rows (``InvalidInput`` names what
    does not hold)."""
    from ._evaluate import RESULTS_FILE, _aggregates

    if not scorers:
        raise InvalidInput(f"evaluation run {run_id!r} names no scorers")
    for name, described in scorers.items():
        _check_registered(service, name, described)
    tracking = service._run_tracking()
    found = [a for a in tracking.list_artifacts(run_id, RESULTS_FILE) if a.path == RESULTS_FILE]
    if not found:
        raise InvalidInput(
            f"run {run_id!r} has no {RESULTS_FILE}; the server computes an evaluation's summary "
            "from the per-row results the run logged (client.evaluation.evaluate logs them)"
        )
    if found[0].size > _MAX_RESULTS:
        raise InvalidInput(f"run {run_id!r}: {RESULTS_FILE} is over {_MAX_RESULTS} bytes")
    text = service._store.blobs.read_bytes(found[0].blob_hash).decode("utf-8", "replace")
    rows = [_row(run_id, n, line, scorers) for n, line in enumerate(text.splitlines(), 1) if line]
    # An unversioned list of records has nothing to check against (and no gate takes it).
    expected = sorted(r.record_id for r in service._records_of(dataset_version_id))
    if dataset_version_id is not None and sorted(r.record_id for r in rows) != expected:
        raise InvalidInput(
            f"run {run_id!r}: its {len(rows)} result rows are not the {len(expected)} records of "
            f"dataset version {dataset_version_id!r} (one row per record)"
        )
    failed = sum(1 for r in rows if r.error or any(not f.ok for f in r.scores.values()))
    return Summary(_aggregates(rows, scorers), len(rows), failed)


def _check_registered(service: EvaluationService, name: str, described: str) -> None:
    """A scorer described as ``name/N kind digest`` is that registered version. Others are
    scorer objects of the client (``module:function``, ``builtin:NAME``, ``judge:MODEL``); a
    gate refuses unregistered judges."""
    parts = described.split(" ")
    if len(parts) != 3 or len(parts[2]) != 12:
        raise InvalidInput(
            f"scorer {name!r}: {described!r} is not 'reference kind digest' (12 hex digits)"
        )
    ref, kind, digest = parts
    scorer, slash, number = ref.partition("/")
    if not slash or ":" in ref:
        return
    if scorer != name or not is_number(number):
        raise InvalidInput(f"scorer {name!r} cannot be recorded as version {ref!r}")
    try:
        version = service.get_scorer(name, int(number))
    except NotFound as exc:
        raise InvalidInput(f"scorer {ref!r}: {exc}") from None
    if version.kind != kind or not version.digest.startswith(digest):
        raise InvalidInput(
            f"scorer {ref!r} is registered as {version.kind} {version.digest[:12]}, not "
            f"{kind} {digest}"
        )


def _row(run_id: str, number: int, line: str, scorers: Mapping[str, str]) -> RowResult:
    where = f"run {run_id!r}: result row {number}"
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise InvalidInput(f"{where} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("record_id"), str):
        raise InvalidInput(f"{where} has no record_id")
    error, latency = data.get("error"), data.get("latency_ms")
    if error is not None and not isinstance(error, str):
        raise InvalidInput(f"{where}: error must be a string or null")
    if latency is not None and (
        isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not math.isfinite(latency)
    ):
        raise InvalidInput(f"{where}: latency_ms must be a number or null")
    scores = data.get("scores")
    if not isinstance(scores, dict) or not all(isinstance(v, dict) for v in scores.values()):
        raise InvalidInput(f"{where}: scores must map scorer names to feedback objects")
    if set(scores) - set(scorers) or (error is None and set(scores) != set(scorers)):
        raise InvalidInput(
            f"{where} is scored by {sorted(scores)}, the run names {sorted(scorers)}"
        )
    return RowResult(
        data["record_id"],
        {},
        data.get("outputs"),
        {},
        {name: _feedback(where, name, v) for name, v in scores.items()},
        latency,
        error,
    )


def _feedback(where: str, name: str, given: Mapping[str, Any]) -> Feedback:
    value, error = given.get("value"), given.get("error")
    if error is not None and not isinstance(error, str):
        raise InvalidInput(f"{where}: {name}'s error must be a string or null")
    if value is not None and not isinstance(value, bool | int | float | str):
        raise InvalidInput(f"{where}: {name}'s value must be a number, bool, string or null")
    return Feedback(value, str(given.get("rationale") or ""), error)
