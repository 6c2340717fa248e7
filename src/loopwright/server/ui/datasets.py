"""``/ui/datasets``: datasets, their versions, a version's profile and validation results, and
the diff of two versions. Profiles are computed when a version is added and stored with it, so
the pages only read them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...errors import InvalidInput
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._dataset_rows import dataset_page, readers, version_numbers, version_page
from ._page import render
from ._paging import paging

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ...data.entities import DatasetVersion

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

MAX_CHARTS = 60  # histograms per version page: past it, the table still has every column
MAX_FILES_SHOWN = 200  # files listed per diff section and on a version page


@router.get("/datasets")
def datasets(
    request: Request,
    state: State,
    _: Viewer,
    offset: str | None = None,
    limit: str | None = None,
) -> Response:
    page = paging(offset, limit)
    rows, total = dataset_page(state.store.db, page)
    return render(
        request,
        "datasets/list.html",
        datasets=rows,
        total=total,
        offset=page.offset,
        limit=page.limit,
        params={"limit": limit},
    )


@router.get("/datasets/{name}")
def dataset(
    request: Request,
    name: str,
    state: State,
    _: Viewer,
    offset: str | None = None,
    limit: str | None = None,
) -> Response:
    page = paging(offset, limit)
    versions, total, description = version_page(state.store.db, name, page)
    return render(
        request,
        "datasets/dataset.html",
        name=name,
        description=description,
        versions=versions,
        total=total,
        offset=page.offset,
        limit=page.limit,
        params={"limit": limit},
    )


@router.get("/datasets/{name}/versions/{version}")
def dataset_version(request: Request, name: str, version: str, state: State, _: Viewer) -> Response:
    found = state.datasets.get(f"{name}@{version}")
    files = state.datasets.files(found)
    parent = state.datasets.get_by_id(found.parent_id) if found.parent_id else None
    return render(
        request,
        "datasets/version.html",
        version=found,
        parent=parent,
        files=files[:MAX_FILES_SHOWN],
        file_total=len(files),
        tables=_tables(found),
        validations=state.datasets.validation_results(found),
        runs=readers(state.store.db, found.id),
    )


@router.get("/datasets/{name}/diff")
def dataset_diff(
    request: Request,
    name: str,
    state: State,
    _: Viewer,
    a: str | None = None,
    b: str | None = None,
) -> Response:
    from ...data.workspace import diff

    numbers = version_numbers(state.store.db, name)
    if not numbers:
        raise InvalidInput(f"dataset {name!r} has no versions yet: there is nothing to compare")
    a = a or (str(numbers[1]) if len(numbers) > 1 else str(numbers[0]))
    b = b or str(numbers[0])
    old = state.datasets.get(f"{name}@{_ref(a, 'a')}")
    new = state.datasets.get(f"{name}@{_ref(b, 'b')}")
    if old.id == new.id:
        raise InvalidInput(
            f"a and b both name {old.ref}: choose two different versions of {name!r} to compare"
        )
    change = diff(state.datasets, old, new)
    return render(
        request,
        "datasets/diff.html",
        name=name,
        numbers=numbers,
        old=old,
        new=new,
        diff=change,
        shown=MAX_FILES_SHOWN,
        schemas=_schema_changes(old, new),
    )


def _ref(text: str, which: str) -> str:
    text = text.strip()
    if not text or len(text) > 300 or "@" in text or "\x00" in text:
        raise InvalidInput(f"{which}={text!r} is no version: give a number such as 3 (or v3)")
    return text


def _tables(version: DatasetVersion) -> list[dict[str, Any]]:
    """Each profiled file's columns as the page shows them: statistics, a histogram spec for a
    numeric column (bars), the top values of a categorical one."""
    profiles: Mapping[str, Any] = version.profile or {}
    schemas: Mapping[str, Any] = version.schema or {}
    charts = 0
    tables = []
    for path, profile in profiles.items():
        if not isinstance(profile, dict):
            continue
        columns = []
        for name, given in (profile.get("columns") or {}).items():
            stats = given if isinstance(given, dict) else {}
            histogram = stats.get("histogram")
            spec = None
            if histogram and histogram.get("counts") and charts < MAX_CHARTS:
                charts += 1
                spec = _histogram_spec(name, histogram)
            columns.append({"name": name, "stats": stats, "chart": spec, "chart_id": f"h{charts}"})
        tables.append(
            {
                "path": path,
                "rows": profile.get("row_count"),
                "format": profile.get("format"),
                "schema": schemas.get(path) or [],
                "columns": columns,
            }
        )
    return tables


def _histogram_spec(column: str, histogram: Mapping[str, Any]) -> dict[str, Any]:
    edges = [float(e) for e in histogram.get("edges", [])]
    counts = list(histogram.get("counts", []))
    # Bars at each bin's centre; the edges are one longer than the counts.
    centres = [(edges[i] + edges[i + 1]) / 2 for i in range(min(len(counts), len(edges) - 1))]
    return {
        "kind": "bars",
        "x_label": column,
        "y_label": "rows",
        "series": [{"label": f"{column}: rows per bin", "x": centres, "y": counts[: len(centres)]}],
    }


def _schema_changes(old: DatasetVersion, new: DatasetVersion) -> list[dict[str, Any]]:
    """Per file in both schemas: columns added, removed, or whose type changed."""
    before: Mapping[str, Any] = old.schema or {}
    after: Mapping[str, Any] = new.schema or {}
    changes = []
    for path in sorted(before.keys() & after.keys()):
        a = {c["name"]: c["type"] for c in before[path]}
        b = {c["name"]: c["type"] for c in after[path]}
        retyped = [(n, a[n], b[n]) for n in sorted(a.keys() & b.keys()) if a[n] != b[n]]
        added = [(n, b[n]) for n in b if n not in a]
        removed = [(n, a[n]) for n in a if n not in b]
        if added or removed or retyped:
            changes.append({"path": path, "added": added, "removed": removed, "retyped": retyped})
    return changes
