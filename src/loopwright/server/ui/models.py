"""``/ui/models``: registered models, one model's versions and requests, one version's card,
gate results and SBOM download.

Every read goes through the caller's registry (``state.registry(caller)``), as the API's
handlers do, but for a model's versions: the registry lists them all, so the page reads its
slice with the registry's own row loader, LIMIT/OFFSET in SQL.

The model card is the registry's own card (``registry.reports``) rendered from its
structured data by a template, so stored text is escaped like any other value: the card's own
HTML rendering carries inline styles the dashboard's CSP forbids.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ...errors import InvalidInput
from ...registry._queries import load_versions, model_row
from ...store import schema as t
from ..api._deps import State, VersionNumber, Viewer
from ..auth import UI_PREFIX
from ._page import render, secure
from ._paging import Offset
from ._services import caller_client
from .approvals import notice_of, this_page

if TYPE_CHECKING:
    from ...registry.entities import ModelVersion
    from ...store.database import Database

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

PAGE = 50
MAX_PAGE = 500
GATE_RESULTS = 20  # a version's newest gate results on its page

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


@router.get("/models")
def models(
    request: Request,
    state: State,
    caller: Viewer,
    filter: str = "",
    offset: Offset = 0,
    limit: Limit = PAGE,
) -> Response:
    """Registered models by name, matching the registry's model ``filter`` if given."""
    registry = state.registry(caller)
    error = None
    try:
        found = registry.search_models(filter) if filter.strip() else registry.list_models()
    except InvalidInput as refused:
        found, error = [], str(refused)
    shown = found[offset : offset + limit]
    names = {m.name for m in shown}
    # Which versions hold a live stage: one query for the whole page, not one per model.
    stages: dict[str, list[tuple[str, int]]] = {}
    for v in registry.search_versions("stage IN ('Production', 'Staging')"):
        if v.model in names:
            stages.setdefault(v.model, []).append((v.stage.value, v.version))
    for held in stages.values():
        held.sort(key=lambda pair: (pair[0] != "Production", -pair[1]))
    return render(
        request,
        "models/list.html",
        status=400 if error else 200,
        models=shown,
        stages=stages,
        filter=filter,
        error=error,
        offset=offset,
        limit=limit,
        total=len(found),
        params={"filter": filter, "limit": limit if limit != PAGE else None},
    )


@router.get("/models/{name}")
def model(
    request: Request,
    name: str,
    state: State,
    caller: Viewer,
    offset: Offset = 0,
    limit: Limit = PAGE,
) -> Response:
    """One model: its versions (newest first), aliases, policy and pending requests."""
    registry = state.registry(caller)
    found = registry.get_model(name)
    versions, total = _versions_page(state.store.db, name, offset, limit)
    return render(
        request,
        "models/model.html",
        model=found,
        versions=versions,
        pending=registry.requests("pending", name),
        notice=notice_of(request),
        back=this_page(request),
        offset=offset,
        limit=limit,
        total=total,
        params={"limit": limit if limit != PAGE else None},
        path=f"{UI_PREFIX}/models/{quote(name, safe='')}",
    )


@router.get("/models/{name}/versions/{version}")
def version(
    request: Request, name: str, version: VersionNumber, state: State, caller: Viewer
) -> Response:
    """One version: details, signature, gate results and its model card."""
    from ...loop._gate_records import GateService
    from ...registry.reports import model_card

    registry = state.registry(caller)
    found = registry.get_version(name, version)
    card = model_card(caller_client(state, caller), name, found.version).to_dict()
    gates = GateService(state.store, actor=caller.user).results(
        model=name, version=found.version, limit=GATE_RESULTS
    )
    return render(
        request,
        "models/version.html",
        version=found,
        card=card,
        gates=gates,
        lineage=_lineage_link(found),
    )


@router.get("/models/{name}/versions/{version}/sbom.json")
def sbom(
    request: Request, name: str, version: VersionNumber, state: State, caller: Viewer
) -> Response:
    """The version's CycloneDX ML-BOM as a download: the document ``loopwright models sbom``
    writes (built by the same functions, with the card)."""
    from ...registry.reports import model_card, model_sbom

    registry = state.registry(caller)
    found = registry.get_version(name, version)
    client = caller_client(state, caller)
    document = model_sbom(client, name, found.version, card=model_card(client, name, found.version))
    filename = _download_name(f"{name}-v{found.version}.cdx.json")
    body = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    response = Response(
        body.encode("utf-8"),
        media_type="application/vnd.cyclonedx+json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"; '
            f"filename*=UTF-8''{quote(f'{name}-v{found.version}.cdx.json', safe='')}",
            "Cache-Control": "no-store",
        },
    )
    return secure(response)


def _versions_page(
    db: Database, name: str, offset: int, limit: int
) -> tuple[list[ModelVersion], int]:
    """One page of the model's versions, deleted ones included (the page marks them), newest
    first, and how many it has: ``list_versions(name, include_deleted=True)`` paged in SQL."""
    v = t.model_versions.c
    with db.read() as conn:
        model_id = model_row(conn, name).id
        query = sa.select(t.model_versions).where(v.model_id == model_id)
        query = query.order_by(v.version.desc()).offset(offset).limit(limit)
        count = sa.select(sa.func.count()).where(v.model_id == model_id)
        return load_versions(conn, conn.execute(query).all()), int(conn.execute(count).scalar_one())


def _download_name(name: str) -> str:
    """An ASCII file name for the header's plain ``filename`` (``filename*`` has the real one)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)


def _lineage_link(found: ModelVersion) -> str:
    subject = quote(f"{found.model}@{found.version}", safe="")
    return f"{UI_PREFIX}/lineage?subject={subject}&kind=model_version"
