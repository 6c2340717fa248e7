"""``/api/v1/dataset-versions/{id}/validate``: run an expectation suite where the data lives."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from ...store.home import acting_as
from ._deps import PREFIX, Editor, State, Viewer, cancel_on_disconnect
from ._schemas import Body

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["datasets"])


class ValidateIn(Body):
    suite: dict[str, Any] = Field(description="A suite as Suite.to_dict() writes it")
    files: str | None = Field(default=None, max_length=1000, description="a glob in the version")


@router.post(
    "/dataset-versions/{version_id}/validate", dependencies=[Depends(cancel_on_disconnect)]
)
def validate(version_id: str, body: ValidateIn, state: State, who: Editor) -> dict[str, Any]:
    """Check the version against the suite, store suite and result, return the result."""
    from ...data.validation import Suite

    suite = Suite.from_dict(body.suite, source="request body")
    version = state.datasets.get_by_id(version_id)
    with acting_as(who.user):
        result = state.datasets.validate(version, suite, files=body.files)
    document: dict[str, Any] = result.to_dict()
    return document


@router.get("/dataset-versions/{version_id}/validations")
def validations(version_id: str, state: State, _: Viewer) -> list[dict[str, Any]]:
    """Stored validation results of the version, newest first."""
    version = state.datasets.get_by_id(version_id)
    return list(state.datasets.validation_results(version))
