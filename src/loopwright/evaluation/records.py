"""Evaluation records: checking what callers send, merging upserts, the stored JSONL form.

A dataset version of an evaluation dataset holds one file, ``records.jsonl``: one canonical JSON
object per record (sorted keys, sorted by record id), so equal records give equal bytes and the
version's content hash is the dataset's digest. A record's id is derived from its inputs
(``dr-`` + 32 hex of their SHA-256), as MLflow deduplicates records by inputs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidInput
from .entities import EvalRecord

__all__ = ["FILE_NAME", "decode", "encode", "merge", "parse_records", "record_id"]

FILE_NAME = "records.jsonl"
_FIELDS = frozenset({"inputs", "expectations", "outputs", "tags", "source", "record_id"})
# What MLflow's client sends beside them (ids and times are ours to assign; they are ignored).
_IGNORED = frozenset(
    {
        "dataset_record_id",
        "dataset_id",
        "created_time",
        "last_update_time",
        "created_by",
        "last_updated_by",
        "source_id",
        "source_type",
    }
)


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"record values must be JSON (strings, numbers, lists, objects; no NaN): {exc}"
        ) from exc


def record_id(inputs: Mapping[str, Any]) -> str:
    """The id of the record with these inputs."""
    return "dr-" + hashlib.sha256(_canonical(inputs).encode()).hexdigest()[:32]


def _mapping(value: Any, what: str, n: int) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(
            f"record {n}: {what} must be an object with string keys, got {type(value).__name__}"
        )
    return dict(value)


def parse_records(raw: Iterable[Any]) -> list[EvalRecord]:
    """Check records as callers send them (``{"inputs": {...}, "expectations": {...}, ...}``)."""
    out = []
    for n, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"record {n} must be an object, got {type(item).__name__}")
        unknown = set(item) - _FIELDS - _IGNORED
        if unknown:
            raise InvalidInput(
                f"record {n} has unknown fields {sorted(unknown)}; a record has "
                f"{', '.join(sorted(_FIELDS - {'record_id'}))}"
            )
        if "inputs" not in item:
            raise InvalidInput(f"record {n} has no 'inputs' (an object of the target's arguments)")
        inputs = _mapping(item["inputs"], "inputs", n)
        if not inputs:
            raise InvalidInput(f"record {n}: inputs must not be empty")
        expectations = _mapping(item.get("expectations") or {}, "expectations", n)
        tags = _mapping(item.get("tags") or {}, "tags", n)
        if not all(isinstance(v, str) for v in tags.values()):
            raise InvalidInput(f"record {n}: tag values must be strings")
        source = item.get("source")
        if source is not None:
            source = _mapping(source, "source", n)
        outputs = item.get("outputs")
        for value in (inputs, expectations, outputs, source):
            _canonical(value)
        out.append(EvalRecord(record_id(inputs), inputs, expectations, outputs, tags, source))
    return out


def merge(
    existing: Iterable[EvalRecord], new: Iterable[EvalRecord]
) -> tuple[list[EvalRecord], int, int]:
    """Upsert ``new`` into ``existing`` by record id: expectations and tags are merged key by
    key, outputs replaced when given, the first source kept. Returns (records, inserted, updated).
    """
    by_id = {r.record_id: r for r in existing}
    inserted = updated = 0
    for record in new:
        old = by_id.get(record.record_id)
        if old is None:
            by_id[record.record_id] = record
            inserted += 1
            continue
        updated += 1
        by_id[record.record_id] = EvalRecord(
            old.record_id,
            old.inputs,
            {**old.expectations, **record.expectations},
            record.outputs if record.outputs is not None else old.outputs,
            {**old.tags, **record.tags},
            old.source if old.source is not None else record.source,
        )
    return sorted(by_id.values(), key=lambda r: r.record_id), inserted, updated


def encode(records: Iterable[EvalRecord]) -> bytes:
    lines = [_canonical(r.to_dict()) for r in sorted(records, key=lambda r: r.record_id)]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def decode(data: bytes) -> list[EvalRecord]:
    out = []
    for line in data.decode().splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        out.append(
            EvalRecord(
                d["record_id"],
                d["inputs"],
                d.get("expectations") or {},
                d.get("outputs"),
                d.get("tags") or {},
                d.get("source"),
            )
        )
    return out


def is_number(value: Any) -> bool:
    """A real number (bools are labels, not numbers; NaN is no score)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
