"""Feature definitions written in YAML: the specs themselves, in a file.

A file holds a list of specs (each with its ``kind``), or a mapping of lists by kind::

    entities:
      - name: driver
        join_keys: {driver_id: int64}
    feature_views:
      - name: driver_stats
        entities: [driver]
        source: {kind: file, path: data/driver_stats.parquet, timestamp_field: event_timestamp}
        features:
          - {name: conv_rate, dtype: float32}
        ttl_seconds: 86400
    feature_services:
      - name: driver_model
        features: ["driver_stats:conv_rate"]

The specs are checked by the definition store like any others; here only their shape is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .spec import Kind

__all__ = ["SECTIONS", "load_yaml"]

SECTIONS: dict[str, Kind] = {
    "entities": "entity",
    "feature_views": "feature_view",
    "on_demand_feature_views": "on_demand_feature_view",
    "feature_services": "feature_service",
}


def load_yaml(path: Path) -> list[dict[str, Any]]:
    """The specs of a YAML file.

    Raises:
        InvalidInput: the file cannot be read, is not YAML, or is not a list of specs or a
            mapping of the sections above; the message names the file (and line).
    """
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"{path}: is not valid YAML{where}: {problem}") from exc
    if data is None:
        return []
    if isinstance(data, dict) and "kind" in data:
        data = [data]
    if isinstance(data, dict):
        unknown = sorted(set(map(str, data)) - set(SECTIONS))
        if unknown:
            raise InvalidInput(
                f"{path}: unknown section(s) {', '.join(unknown)}; sections: "
                f"{', '.join(SECTIONS)} (or a list of specs, each with a kind)"
            )
        specs: list[dict[str, Any]] = []
        for section, kind in SECTIONS.items():
            items = data.get(section) or []
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise InvalidInput(f"{path}: {section} must be a list of definitions")
            for item in items:
                if item.get("kind", kind) != kind:
                    raise InvalidInput(
                        f"{path}: {item.get('name')!r} in {section} has kind {item['kind']!r}"
                    )
                specs.append({**item, "kind": kind})
        return specs
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return [dict(item) for item in data]
    raise InvalidInput(
        f"{path}: must hold a list of definition specs or a mapping of "
        f"{', '.join(SECTIONS)}, not {type(data).__name__}"
    )
