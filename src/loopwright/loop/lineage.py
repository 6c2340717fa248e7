"""Lineage end to end: from a prediction, a run, a model version or a dataset version to what
made it (``loopwright lineage SUBJECT``).

:func:`lineage` walks the records through client calls only, so it answers the same on the
embedded store and through a server. From the subject it follows provenance: a prediction's log
row to its deployment and model version; a model version to the loop iteration that produced it
(and that iteration's trigger), its source run, its gate results and approval requests; a run to
its pipeline run and the pipeline's steps, the git commit it ran at and the dataset versions it
read; a dataset version to its parent versions and the run that produced it; a trace (an LLM
request) to the prompt version it rendered, that version's evaluation gate results, their
evaluation runs and dataset versions (content hashes), its approval requests and approvers, and
the gateway route and deployment that served it (:mod:`._lineage_llm`). From a subject
that is a dataset version or a run it also follows one step downstream: the runs that read the
dataset, the model versions the run registered.

Example:
    >>> import loopwright as lw
    >>> from loopwright.loop.lineage import lineage
    >>> client = lw.connect(home="lw-doc-lineage")
    >>> with client.start_run(experiment="demo") as run:
    ...     pass
    >>> graph = lineage(client, run.id)
    >>> graph.nodes[0].kind
    'run'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from .._numbers import is_number
from ..errors import InvalidInput, LimitExceeded, NotFound
from ._lineage_graph import Edge as Edge
from ._lineage_graph import LineageGraph as LineageGraph
from ._lineage_graph import Node as Node
from ._lineage_walk import MAX_NODES as MAX_NODES
from ._lineage_walk import Walk

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from ..registry.entities import ModelVersion
    from ..tracking.entities import Run

__all__ = ["KINDS", "MAX_NODES", "Edge", "LineageGraph", "Node", "SubjectKind", "lineage"]

SubjectKind = Literal[
    "prediction", "run", "pipeline_run", "model_version", "dataset_version", "trace",
    "prompt_version",
]  # fmt: skip
KINDS: tuple[str, ...] = (
    "prediction", "run", "pipeline_run", "model_version", "dataset_version", "trace",
    "prompt_version",
)  # fmt: skip

_LOG_COLUMNS = (
    "request_id",
    "row",
    "timestamp",
    "deployment",
    "variant",
    "model",
    "model_version",
    "latency_ms",
    "status",
)
_HEX_ID = re.compile(r"[0-9a-f]{32}")
_VERSION = re.compile(r"v?(\d+)")


def lineage(
    client: Client,
    subject: str,
    *,
    kind: SubjectKind | None = None,
    since: datetime | timedelta = timedelta(days=7),
    deployment: str | None = None,
) -> LineageGraph:
    """The lineage graph of ``subject``.

    The subject's kind is read from its form, then confirmed by a lookup (``kind`` forces it):

    - ``models:/NAME/3``, ``models:/NAME@ALIAS``, ``NAME@3``: a model version;
    - ``NAME@v3``: a dataset version, else a model version (``NAME@ALIAS``: a model alias,
      else a dataset alias); the dataset's own spelling wins when both exist;
    - ``prompts:/NAME/3``, ``prompts:/NAME@ALIAS``: a prompt version;
    - 32 hex digits: a run, else a pipeline run, else a trace, else a prediction's request id;
    - anything else: a prediction's request id.

    A prediction is searched in the prediction log from ``since`` (a time, or a span before
    now; default 7 days) to now, newest day first, in ``deployment`` or every logged
    deployment. ``NotFound`` names what was tried.
    """
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"lineage kind {kind!r} is not one of {', '.join(KINDS)}")
    subject = subject.strip()
    if not subject:
        raise InvalidInput("lineage needs a subject: a request id, run id, NAME@3 or DATASET@v3")
    walk = Walk(client, subject)
    walk.graph.root = _Start(client, walk).start(subject, kind, _moment(since), deployment)
    return walk.graph


def _moment(since: datetime | timedelta) -> datetime:
    if isinstance(since, timedelta):
        return datetime.now(UTC) - since
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


class _Start:
    """Where a walk starts: the subject read by its form and confirmed by lookups."""

    def __init__(self, client: Client, walk: Walk) -> None:
        self.client = client
        self.walk = walk

    def start(self, subject: str, kind: str | None, since: datetime, deployment: str | None) -> str:
        if kind == "prediction":
            return self._prediction(subject, since, deployment)
        if kind == "run":
            return self.walk.run(self._get_run(subject), downstream=True)
        if kind == "pipeline_run":
            return self.walk.pipeline_run(subject)
        if kind == "model_version":
            version = self._find_model_version(subject, strict=True)
            assert version is not None  # strict: raised otherwise
            return self.walk.model_version(version)
        if kind == "dataset_version":
            found = self._find_dataset(subject, strict=True)
            return self.walk.dataset_version(found, downstream=True)
        if kind == "trace":
            return self.walk.trace(self.client.tracing.get(subject, spans=False))
        if kind == "prompt_version" or subject.startswith("prompts:/"):
            return self.walk.prompt_version(self.client.prompts.load(subject))
        if subject.startswith("models:/") or "@" in subject:
            return self._by_ref(subject)
        if _HEX_ID.fullmatch(subject):
            try:
                return self.walk.run(self._get_run(subject), downstream=True)
            except NotFound:
                pass
            try:
                return self.walk.pipeline_run(subject)
            except NotFound:
                pass
            try:
                return self.walk.trace(self.client.tracing.get(subject, spans=False))
            except (NotFound, InvalidInput):
                pass
        try:
            return self._prediction(subject, since, deployment)
        except NotFound as exc:
            if not _HEX_ID.fullmatch(subject):
                raise
            raise NotFound(
                f"{subject!r} is no run id, pipeline run id, trace id or logged request id; "
                f"{exc.message}"
            ) from None

    def _by_ref(self, subject: str) -> str:
        name, _, ref = subject.rpartition("@")
        dataset_first = not subject.startswith("models:/") and bool(re.fullmatch(r"v\d+", ref))
        if dataset_first:
            found = self._find_dataset(subject, strict=False)
            if found is not None:
                return self.walk.dataset_version(found, downstream=True)
        version = self._find_model_version(subject, strict=False)
        if version is not None:
            return self.walk.model_version(version)
        if not dataset_first and not subject.startswith("models:/"):
            found = self._find_dataset(subject, strict=False)
            if found is not None:
                return self.walk.dataset_version(found, downstream=True)
        raise NotFound(
            f"{subject!r} names no model version and no dataset version; write NAME@3 or "
            f"models:/NAME/3 for a model version, DATASET@v3 for a dataset version (name "
            f"{name!r}, version or alias {ref!r})"
        )

    # --- lookups -------------------------------------------------------------------------------

    def _get_run(self, run_id: str) -> Run:
        try:
            return self.client.tracking.get_run(run_id)
        except InvalidInput:
            raise NotFound(f"run {run_id!r} does not exist") from None

    def _find_model_version(self, subject: str, *, strict: bool) -> ModelVersion | None:
        text = subject.removeprefix("models:/")
        if "@" in text:
            name, _, ref = text.rpartition("@")
        else:
            name, _, ref = text.rpartition("/")
        if not name or not ref:
            if strict:
                raise InvalidInput(
                    f"{subject!r} is not a model version; write NAME@3, models:/NAME/3 or "
                    "models:/NAME@ALIAS"
                )
            return None
        number = _VERSION.fullmatch(ref)
        try:
            return self.client.registry.resolve(name, int(number[1]) if number else ref)
        except (NotFound, InvalidInput):
            if strict:
                raise
            return None

    def _find_dataset(self, subject: str, *, strict: bool) -> Any:
        name, _, ref = subject.rpartition("@")
        candidates = [subject]
        if is_number(ref):
            candidates.append(f"{name}@v{ref}")
        for candidate in candidates:
            try:
                return self.client.datasets.get(candidate)
            except (NotFound, InvalidInput):
                continue
        if strict:
            raise NotFound(f"dataset version {subject!r} does not exist; write DATASET@v3")
        return None

    def _prediction(self, request_id: str, since: datetime, deployment: str | None) -> str:
        rows, searched = self._find_request(request_id, since, deployment)
        if rows is None:
            where = f"deployment {deployment!r}" if deployment else f"{searched} deployment(s)"
            raise NotFound(
                f"no prediction with request id {request_id!r} in the prediction log of {where} "
                f"since {since:%Y-%m-%d %H:%M} UTC; widen --since or name --deployment"
            )
        return self.walk.prediction(request_id, rows)

    def _find_request(
        self, request_id: str, since: datetime, deployment: str | None
    ) -> tuple[pd.DataFrame | None, int]:
        logged = self.client.prediction_log.deployments()
        names = [
            d.name
            for d in logged
            if (deployment is None or d.name == deployment) and (d.last is None or d.last >= since)
        ]
        if deployment is not None and deployment not in {d.name for d in logged}:
            raise NotFound(f"deployment {deployment!r} has nothing in the prediction log")
        for low, high in _days(since, datetime.now(UTC)):
            for name in names:
                frame = self._read(name, low, high)
                hit = frame[frame["request_id"] == request_id]
                if len(hit):
                    return hit.sort_values("row"), len(names)
        return None, len(names)

    def _read(self, deployment: str, low: datetime, high: datetime | None) -> pd.DataFrame:
        """The log's fixed columns in ``[low, high)``; halved while a server says it is too
        much for one read (down to an hour)."""
        try:
            return self.client.prediction_log.read(
                deployment, since=low, until=high, columns=list(_LOG_COLUMNS)
            )
        except LimitExceeded:
            end = high or datetime.now(UTC) + timedelta(minutes=1)
            if end - low <= timedelta(hours=1):
                raise
            middle = low + (end - low) / 2
            import pandas as pd

            return pd.concat(
                [self._read(deployment, low, middle), self._read(deployment, middle, high)]
            )


def _days(since: datetime, now: datetime) -> Iterator[tuple[datetime, datetime | None]]:
    """``[since, now]`` in one-day windows, newest first (the newest open-ended)."""
    high: datetime | None = None
    low = now - timedelta(days=1)
    while True:
        yield max(low, since), high
        if low <= since:
            return
        high, low = low, low - timedelta(days=1)
