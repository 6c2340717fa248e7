"""Model cards: what a registered model version is, what it was trained on and how it did.

A card is built from the registry's objects by a pure function and holds only plain data, so it
renders the same way today and from its stored JSON later (``ModelCard.from_dict``).

Example:
    >>> from loopwright.registry.reports.card import build_card
    >>> from loopwright.registry.entities import ModelVersion, RegisteredModel, Stage
    >>> model = RegisteredModel("m1", "churn", None, "ana", 0, 0, card={"intended_use": "Churn"})
    >>> version = ModelVersion("v1", "churn", 1, None, None, "READY", Stage.NONE, "sklearn", None,
    ...                        None, {"auc": 0.91}, None, "ana", 0, 0)
    >>> card = build_card(model, version, run=None, datasets=[], approvals=[])
    >>> card.to_dict()["considerations"]["limitations"]
    []
    >>> print(card.to_markdown().splitlines()[0])
    # Model card: churn v1
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput
from ._card_render import NOT_PROVIDED as NOT_PROVIDED
from ._card_render import render_html, render_markdown

if TYPE_CHECKING:
    from ...data.entities import DatasetVersion
    from ...tracking.entities import Run
    from ..entities import ApprovalRequest, ModelVersion, RegisteredModel
    from .evaluation import Evaluation

__all__ = [
    "CARD_TEXT",
    "NOT_PROVIDED",
    "ModelCard",
    "build_card",
    "card_text",
    "iso_time",
    "normalise_signature",
]

CARD_TEXT = ("intended_use", "limitations", "ethical_considerations")
"""The card text every card shows, saying "Not provided" when the model has none."""


@dataclass(frozen=True)
class ModelCard:
    """A model version's card as plain data; see :func:`build_card` for what each part holds."""

    details: Mapping[str, Any]
    considerations: Mapping[str, list[str]]  # intended_use, limitations, … (empty: not provided)
    training_data: tuple[Mapping[str, Any], ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    evaluation: Mapping[str, Any] | None = None  # Evaluation.to_dict() without its fairness
    fairness: Mapping[str, Any] | None = None
    signature: Mapping[str, list[dict[str, Any]]] | None = None
    approvals: tuple[Mapping[str, Any], ...] = ()
    lineage: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] | None = None

    @property
    def title(self) -> str:
        return f"{self.details['name']} v{self.details['version']}"

    @property
    def not_provided(self) -> list[str]:
        """The standard card texts the model owner has not written yet."""
        return [key for key in CARD_TEXT if not self.considerations.get(key)]

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data with a stable layout (a fresh copy each call)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["not_provided"] = self.not_provided
        result: dict[str, Any] = json.loads(json.dumps(data, default=_jsonable))
        return result

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON; keys keep the card's order, which the same inputs reproduce."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """The card that :meth:`to_dict` produced (extra keys are ignored)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name in ("training_data", "approvals"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)

    def to_markdown(self) -> str:
        return render_markdown(self)

    def to_html(self) -> str:
        """A self-contained HTML page: inline CSS and SVG charts, no scripts or external files."""
        return render_html(self)


def build_card(
    model: RegisteredModel,
    version: ModelVersion,
    *,
    run: Run | None,
    datasets: Sequence[DatasetVersion],
    approvals: Sequence[ApprovalRequest],
    evaluation: Evaluation | None = None,
    environment: Mapping[str, Any] | None = None,
) -> ModelCard:
    """The card of ``version``: details, card text, training data, metrics, approvals, lineage.

    Args:
        model, version: the registered model and the version the card describes.
        run: the version's source run, when it is known.
        datasets: the versions of the data it was trained on (ids the version records that are
            missing here are listed as unresolved).
        approvals: approval requests; those for other versions are ignored.
        evaluation: held-out results from :func:`loopwright.registry.reports.evaluation.evaluate`.
        environment: ``{"python_version": "3.11.9", "packages": {"numpy": "2.0.1", …}}``.
    """
    if model.name != version.model:
        raise InvalidInput(f"version {version.ref} does not belong to model {model.name!r}")
    if run is not None and version.run_id is not None and run.id != version.run_id:
        raise InvalidInput(
            f"run {run.id!r} is not the source run of {version.ref}; that is {version.run_id!r}"
        )
    evaluated = None if evaluation is None else evaluation.to_dict()
    fairness = None if evaluated is None else evaluated.pop("fairness")
    training = _training_data(version, datasets)
    return ModelCard(
        details=_details(model, version),
        considerations=card_text(model.card),
        training_data=training,
        metrics=dict(sorted(version.metrics.items())),
        evaluation=evaluated,
        fairness=fairness,
        signature=normalise_signature(version.signature),
        approvals=tuple(
            _approval(request)
            for request in sorted(approvals, key=lambda r: (r.created_at, r.id))
            if request.version_id == version.id
            or (request.model == version.model and request.version == version.version)
        ),
        lineage=_lineage(version, run, training),
        environment=None if environment is None else _environment(environment),
    )


def card_text(card: Mapping[str, Any]) -> dict[str, list[str]]:
    """The model's card text as lists of paragraphs: the standard keys first, then the others."""
    text = {key: _paragraphs(card.get(key)) for key in CARD_TEXT}
    for key in sorted(set(card) - set(CARD_TEXT)):
        text[str(key)] = _paragraphs(card[key])
    return text


def normalise_signature(signature: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """A signature's ``inputs``/``outputs`` (and ``params``) as rows of name, type, shape, required.

    Accepts MLflow's layouts: lists of column or tensor specs, the same as JSON strings, or a
    mapping of column name to type.

        >>> normalise_signature({"inputs": '[{"name": "age", "type": "long"}]'})["inputs"]
        [{'name': 'age', 'type': 'long', 'shape': None, 'required': True}]
    """
    result: dict[str, list[dict[str, Any]]] = {}
    for part in ("inputs", "outputs", "params"):
        spec = (signature or {}).get(part)
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError:
                spec = [{"type": spec}]
        if isinstance(spec, Mapping):
            spec = [{"name": name, "type": kind} for name, kind in spec.items()]
        if spec:
            result[part] = [_signature_row(item) for item in spec]
    return result


def iso_time(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ``2024-05-01T12:00:00Z``."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    return sorted(value, key=str) if isinstance(value, set | frozenset) else str(value)


def _paragraphs(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Sequence):
        return [item if isinstance(item, str) else json.dumps(item) for item in value if item]
    return [json.dumps(value, sort_keys=True, default=str)]


def _signature_row(item: Any) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        return {"name": None, "type": str(item), "shape": None, "required": True}
    tensor = item.get("tensor-spec") or {}
    kind = tensor.get("dtype") or item.get("type") or item.get("dtype")
    if kind == "tensor" or kind is None:
        kind = "tensor" if tensor else "unknown"
    shape = tensor.get("shape", item.get("shape"))
    required = item.get("required", not item.get("optional", False))
    return {
        "name": item.get("name"),
        "type": kind if isinstance(kind, str) else json.dumps(kind),
        "shape": None if shape is None else list(shape),
        "required": bool(required),
    }


def _details(model: RegisteredModel, version: ModelVersion) -> dict[str, Any]:
    aliases = set(version.aliases) | {a for a, v in model.aliases.items() if v == version.version}
    return {
        "name": model.name,
        "version": version.version,
        "ref": version.ref,
        "description": version.description or model.description,
        "flavor": version.flavor,
        "package_hash": version.package_hash,
        "status": version.status,
        "stage": getattr(version.stage, "value", version.stage),
        "aliases": sorted(aliases),
        "created_by": version.created_by,
        "created_at": iso_time(version.created_at),
        "source": version.source,
        "source_run": version.run_id,
        "tags": dict(sorted(version.tags.items())),
    }


def _training_data(
    version: ModelVersion, datasets: Sequence[DatasetVersion]
) -> tuple[dict[str, Any], ...]:
    known = {d.id: d for d in datasets}
    ordered = [*version.dataset_version_ids, *(d.id for d in datasets)]
    entries: list[dict[str, Any]] = []
    for dataset_id in dict.fromkeys(ordered):  # recorded order first, no duplicates
        found = known.get(dataset_id)
        if found is None:
            entries.append({"id": dataset_id, "ref": None, "resolved": False})
            continue
        entries.append(
            {
                "id": found.id,
                "ref": found.ref,
                "resolved": True,
                "dataset": found.dataset,
                "version": found.number,
                "content_hash": found.content_hash,
                "rows": _row_count(found.profile),
                "columns": _column_count(found.schema, found.profile),
                "files": found.file_count,
                "size": found.total_size,
                "produced_by_run": found.produced_by_run_id,
                "created_by": found.created_by,
                "created_at": iso_time(found.created_at),
                "message": found.message,
            }
        )
    return tuple(entries)


def _row_count(profile: Mapping[str, Any] | None) -> int | None:
    """Rows across the version's profiled tables (``{path: {"row_count": …}}``), if profiled."""
    if not profile:
        return None
    if isinstance(profile.get("row_count"), int):
        return int(profile["row_count"])
    counts = [p.get("row_count") for p in profile.values() if isinstance(p, Mapping)]
    known = [c for c in counts if isinstance(c, int)]
    return sum(known) if known else None


def _column_count(
    schema: Mapping[str, Any] | None, profile: Mapping[str, Any] | None
) -> int | None:
    names: set[str] = set()
    for columns in (schema or {}).values():
        if isinstance(columns, Sequence):
            names |= {c["name"] for c in columns if isinstance(c, Mapping) and "name" in c}
    if names:
        return len(names)
    counts = [p.get("column_count") for p in (profile or {}).values() if isinstance(p, Mapping)]
    known = [c for c in counts if isinstance(c, int)]
    return max(known) if known else None


def _approval(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "action": request.action,
        "target": request.target,
        "status": request.status,
        "requested_by": request.requested_by,
        "comment": request.comment,
        "created_at": iso_time(request.created_at),
        "resolved_at": iso_time(request.resolved_at),
        "required": {"approvals": request.rule.approvals, "role": request.rule.role},
        "decisions": [
            {
                "actor": d.actor,
                "role": d.role,
                "decision": d.decision,
                "comment": d.comment,
                "created_at": iso_time(d.created_at),
            }
            for d in sorted(request.decisions, key=lambda d: (d.created_at, d.id))
        ],
    }


def _lineage(
    version: ModelVersion, run: Run | None, training: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    source_run: dict[str, Any] | None = None
    if run is not None:
        source_run = {
            "id": run.id,
            "name": run.name,
            "experiment_id": run.experiment_id,
            "status": run.status.value,
            "user": run.user,
            "started_at": iso_time(run.start_time),
            "ended_at": iso_time(run.end_time),
            "entry_point": run.entry_point,
            "git_commit": run.git_commit,
            "git_branch": run.git_branch,
            "git_dirty": run.git_dirty,
            "environment_id": run.environment_id,
            "params": dict(sorted(run.params.items())),
        }
    elif version.run_id is not None:
        source_run = {"id": version.run_id}
    return {
        "model_version": version.ref,
        "source": version.source,
        "package_hash": version.package_hash,
        "run": source_run,
        "datasets": [
            {"ref": d["ref"], "id": d["id"], "produced_by_run": d.get("produced_by_run")}
            for d in training
        ],
    }


def _environment(environment: Mapping[str, Any]) -> dict[str, Any]:
    packages = environment.get("packages") or {}
    extra = {k: v for k, v in environment.items() if k not in ("python_version", "packages")}
    return {
        "python_version": environment.get("python_version"),
        "packages": {
            str(k): str(v) for k, v in sorted(packages.items(), key=lambda i: i[0].lower())
        },
        **{str(k): extra[k] for k in sorted(extra)},
    }
