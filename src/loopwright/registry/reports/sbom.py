"""An ML-BOM of a model version: CycloneDX 1.6 JSON listing the model, its data and its libraries.

The document names the model (with its model card: parameters, metrics, considerations), each file
of its package, the dataset versions it was trained on and the Python packages of its environment,
with BLAKE3 hashes and ``pkg:pypi`` package URLs. cyclonedx-python-lib has no model-card objects,
so the JSON is written here; :func:`validate_sbom` checks it against the schema that library ships.

Example:
    >>> from loopwright.registry.reports.sbom import pypi_purl
    >>> pypi_purl("Zope_Interface", "6.1+local")
    'pkg:pypi/zope-interface@6.1%2Blocal'
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...errors import InvalidInput
from .card import card_text, iso_time, normalise_signature

if TYPE_CHECKING:
    from ...data.entities import DatasetVersion
    from ..entities import ModelVersion, RegisteredModel
    from .card import ModelCard

__all__ = ["SPEC_VERSION", "build_sbom", "pypi_purl", "validate_sbom"]

SPEC_VERSION = "1.6"

_HASH = re.compile(r"[0-9a-fA-F]{64}")  # BLAKE3's 256-bit digest, as the schema's pattern allows
_APPROACHES = {"supervised", "unsupervised", "reinforcement-learning", "semi-supervised",
               "self-supervised"}  # fmt: skip


def build_sbom(
    model: RegisteredModel,
    version: ModelVersion,
    *,
    package_files: Sequence[tuple[str, str, int]],
    datasets: Sequence[DatasetVersion],
    environment: Mapping[str, Any] | None,
    card: ModelCard | None = None,
    serial_number: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 ML-BOM of ``version`` as a JSON-ready dict.

    Args:
        package_files: ``(path, blake3 hex, size)`` of each file in the model package.
        datasets: the dataset versions the model was trained on.
        environment: ``{"python_version": "3.11.9", "packages": {"scikit-learn": "1.5.0", …}}``.
        card: the version's model card, whose evaluation adds per-slice and fairness metrics.
        serial_number: a UUID (or ``urn:uuid:…``) naming this BOM; a new one by default.
        timestamp: when the BOM was made (now by default).
    """
    from ... import __version__

    model_ref = f"model:{model.name}/{version.version}"
    component: dict[str, Any] = {"type": "machine-learning-model", "bom-ref": model_ref}
    component |= _identity(model, version)
    component["properties"] = _properties(_model_properties(model, version, datasets))
    data = _dataset_components(datasets)
    component["modelCard"] = _model_card(model, version, card, [d["bom-ref"] for d in data])
    files = [_file(model_ref, path, digest, size) for path, digest, size in sorted(package_files)]
    if files:
        component["components"] = files
    runtime = _environment_components(environment or {})
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": _serial(serial_number),
        "version": 1,
        "metadata": {
            "timestamp": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "tools": {
                "components": [
                    {"type": "application", "name": "loopwright", "version": __version__}
                ]
            },
            # the subject of the BOM; its bom-ref belongs to the full entry under components
            "component": {"type": "machine-learning-model", **_identity(model, version)},
        },
        "components": [component, *data, *runtime],
        "dependencies": [
            {"ref": model_ref, "dependsOn": [c["bom-ref"] for c in (*data, *runtime)]},
            *({"ref": c["bom-ref"], "dependsOn": []} for c in (*data, *runtime)),
        ],
    }


def pypi_purl(name: str, version: str | None = None) -> str:
    """The package URL of a PyPI distribution, with the purl spec's name normalisation.

    The name is lowercased with underscores turned into dashes (dots stay, as purl's reference
    libraries keep them); the version is percent-encoded.
    """
    normalised = quote(name.strip().lower().replace("_", "-"), safe="")
    if not normalised:
        raise InvalidInput("a PyPI package needs a name")
    return f"pkg:pypi/{normalised}" + (f"@{quote(version, safe='')}" if version else "")


def validate_sbom(doc: Mapping[str, Any]) -> None:
    """Check ``doc`` against the CycloneDX 1.6 JSON schema bundled with cyclonedx-python-lib.

    Raises:
        InvalidInput: the document does not conform; the message shows the most relevant error.
        ImportError: cyclonedx-python-lib or jsonschema is not installed.
    """
    from jsonschema.exceptions import best_match

    errors = list(_validator().iter_errors(doc))
    if errors:
        error = best_match(errors)
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise InvalidInput(
            f"the SBOM does not conform to CycloneDX {SPEC_VERSION} ({len(errors)} error(s)); "
            f"at {where}: {error.message}"
        )


@functools.cache
def _validator() -> Any:
    try:
        from importlib.resources import files

        import jsonschema
        import referencing
        import referencing.jsonschema

        folder = files("cyclonedx.schema._res")
    except ImportError as exc:
        raise ImportError(
            "validate_sbom needs cyclonedx-python-lib (for the CycloneDX schema) and jsonschema: "
            "pip install 'loopwright[sbom]'"
        ) from exc
    resources = []
    for name in ("bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json",
                 "jsf-0.82.SNAPSHOT.schema.json"):  # fmt: skip
        contents = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        resource = referencing.jsonschema.DRAFT7.create_resource(contents)
        # the BOM schema refers to its neighbours by file name, they name themselves otherwise
        resources.append((f"http://cyclonedx.org/schema/{name}", resource))
        resources.append((contents["$id"], resource))
    registry: Any = referencing.Registry().with_resources(resources)
    schema = resources[0][1].contents
    cls = jsonschema.Draft7Validator
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


def _identity(model: RegisteredModel, version: ModelVersion) -> dict[str, Any]:
    identity: dict[str, Any] = {"name": model.name, "version": str(version.version)}
    description = version.description or model.description
    if description:
        identity["description"] = description
    if version.package_hash:
        identity["hashes"] = [_blake3(version.package_hash, f"package of {version.ref}")]
    return identity


def _model_properties(
    model: RegisteredModel, version: ModelVersion, datasets: Sequence[DatasetVersion]
) -> list[tuple[str, Any]]:
    known = {d.id for d in datasets}
    aliases = sorted(
        set(version.aliases) | {a for a, v in model.aliases.items() if v == version.version}
    )
    return [
        ("loopwright:model_uri", version.ref),
        ("loopwright:version_id", version.id),
        ("loopwright:flavor", version.flavor),
        ("loopwright:stage", getattr(version.stage, "value", version.stage)),
        ("loopwright:status", version.status),
        ("loopwright:source", version.source),
        ("loopwright:run_id", version.run_id),
        ("loopwright:created_by", version.created_by),
        ("loopwright:created_at", iso_time(version.created_at)),
        *(("loopwright:alias", alias) for alias in aliases),
        *(("loopwright:tag:" + k, v) for k, v in sorted(version.tags.items())),
        *(
            ("loopwright:unresolved_dataset_version_id", d)
            for d in version.dataset_version_ids
            if d not in known
        ),
    ]


def _model_card(
    model: RegisteredModel, version: ModelVersion, card: ModelCard | None, dataset_refs: list[str]
) -> dict[str, Any]:
    evaluation = (card.evaluation if card else None) or {}
    fairness = card.fairness if card else None
    text = dict(card.considerations) if card else card_text(model.card)
    task = model.card.get("task") or evaluation.get("task")
    approach = model.card.get("approach") or ("supervised" if evaluation else None)
    parameters: dict[str, Any] = {}
    if approach in _APPROACHES:
        parameters["approach"] = {"type": approach}
    if task:
        parameters["task"] = str(task)
    if dataset_refs:
        parameters["datasets"] = [{"ref": ref} for ref in dataset_refs]
    for part, rows in normalise_signature(version.signature).items():
        if part in ("inputs", "outputs"):
            parameters[part] = [{"format": _column_format(row)} for row in rows]
    metrics = [{"type": k, "value": str(v)} for k, v in sorted(version.metrics.items())]
    for key, value in evaluation.get("metrics", {}).items():
        if key != "n":
            metrics.append({"type": key, "value": str(value), "slice": "evaluation"})
    for s in evaluation.get("slices", []):
        label = f"{s['feature']}={s['value']}"
        metrics += [{"type": k, "value": str(v), "slice": label} for k, v in s["metrics"].items()]
    considerations: dict[str, Any] = {}
    for key, name in (
        ("users", "users"),
        ("intended_use", "useCases"),
        ("limitations", "technicalLimitations"),
        ("performance_tradeoffs", "performanceTradeoffs"),
    ):
        if text.get(key):
            considerations[name] = list(text[key])
    if text.get("ethical_considerations"):
        considerations["ethicalConsiderations"] = [
            {"name": risk} for risk in text["ethical_considerations"]
        ]
    if fairness:
        metrics += _fairness_metrics(fairness)
        assessments = _fairness_assessments(fairness)
        if assessments:
            considerations["fairnessAssessments"] = assessments
    model_card: dict[str, Any] = {}
    if parameters:
        model_card["modelParameters"] = parameters
    if metrics:
        model_card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    if considerations:
        model_card["considerations"] = considerations
    return model_card


def _fairness_metrics(fairness: Mapping[str, Any]) -> list[dict[str, str]]:
    attribute = fairness["attribute"]
    metrics = [
        {"type": key, "value": str(fairness[key]), "slice": attribute}
        for key in (
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equal_opportunity_difference",
            "equalized_odds_difference",
            "disparate_impact_ratio",
        )
        if fairness[key] is not None
    ]
    for group in fairness["groups"]:
        label = f"{attribute}={group['group']}"
        for key in ("selection_rate", "true_positive_rate", "false_positive_rate", "impact_ratio"):
            if group[key] is not None:
                metrics.append({"type": key, "value": str(group[key]), "slice": label})
    return metrics


def _fairness_assessments(fairness: Mapping[str, Any]) -> list[dict[str, str]]:
    """One assessment per group that fails the four-fifths rule."""
    attribute, threshold = fairness["attribute"], fairness["threshold"]
    groups = {g["group"]: g for g in fairness["groups"]}
    reference = groups[fairness["reference_group"]]
    base = f"{attribute}={reference['group']} ({reference['selection_rate']:.3f})"
    return [
        {
            "groupAtRisk": f"{attribute}={name}",
            "harms": (
                f"selection rate {groups[name]['selection_rate']:.3f} is "
                f"{groups[name]['impact_ratio']:.2f} times that of {base}: "
                f"below the four-fifths rule's {threshold}"
            ),
        }
        for name in fairness["failing_groups"]
    ]


def _column_format(row: Mapping[str, Any]) -> str:
    text = str(row["type"])
    if row.get("shape") is not None:
        text += f" {row['shape']}"
    return f"{row['name']}: {text}" if row.get("name") else text


def _dataset_components(datasets: Sequence[DatasetVersion]) -> list[dict[str, Any]]:
    components: dict[str, dict[str, Any]] = {}
    for d in datasets:
        ref = f"dataset:{d.ref}"
        if ref in components:
            continue
        summary: list[tuple[str, Any]] = [
            ("loopwright:dataset_version_id", d.id),
            ("loopwright:files", d.file_count),
            ("loopwright:size", d.total_size),
            ("loopwright:produced_by_run_id", d.produced_by_run_id),
            ("loopwright:created_at", iso_time(d.created_at)),
        ]
        entry: dict[str, Any] = {"type": "dataset", "name": d.ref}
        if d.message:
            entry["description"] = d.message
        entry["contents"] = {"properties": _properties(summary)}
        components[ref] = {
            "type": "data",
            "bom-ref": ref,
            "name": d.dataset,
            "version": f"v{d.number}",
            "hashes": [_blake3(d.content_hash, f"dataset version {d.ref}")],
            "data": [entry],
        }
    return list(components.values())


def _environment_components(environment: Mapping[str, Any]) -> list[dict[str, Any]]:
    components: dict[str, dict[str, Any]] = {}
    python = environment.get("python_version")
    if python:
        components["python"] = {
            "type": "platform",
            "bom-ref": f"python@{python}",
            "name": "python",
            "version": str(python),
        }
    packages = environment.get("packages") or {}
    for name in sorted(packages, key=lambda n: (_distribution(n), n)):
        version = str(packages[name]) if packages[name] is not None else None
        purl = pypi_purl(name, version)
        key = _distribution(name)
        if key not in components:  # "Foo_Bar" and "foo.bar" name one distribution (PEP 503)
            library = {"type": "library", "bom-ref": purl, "name": name, "purl": purl}
            components[key] = library | ({"version": version} if version else {})
    return list(components.values())


def _distribution(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _file(model_ref: str, path: str, digest: str, size: int) -> dict[str, Any]:
    return {
        "type": "file",
        "bom-ref": f"{model_ref}#{path}",
        "name": path,
        "hashes": [_blake3(digest, f"package file {path!r}")],
        "properties": [{"name": "loopwright:size", "value": str(size)}],
    }


def _blake3(digest: str, what: str) -> dict[str, str]:
    if not _HASH.fullmatch(digest):
        raise InvalidInput(f"the BLAKE3 hash of the {what} is not 64 hex digits: {digest!r}")
    return {"alg": "BLAKE3", "content": digest.lower()}


def _properties(pairs: Sequence[tuple[str, Any]]) -> list[dict[str, str]]:
    return [{"name": name, "value": str(value)} for name, value in pairs if value is not None]


def _serial(serial_number: str | None) -> str:
    if serial_number is None:
        return uuid.uuid4().urn
    try:
        return uuid.UUID(serial_number.removeprefix("urn:uuid:")).urn
    except ValueError:
        raise InvalidInput(f"serial_number must be a UUID, not {serial_number!r}") from None
