"""``/api/v1/dataset-versions/{id}/validate``: run an expectation suite where the data lives."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from ..._numbers import is_number
from ...errors import InvalidInput
from ...store.home import acting_as
from ._deps import PREFIX, Editor, State, Viewer, cancel_on_disconnect
from ._schemas import Body

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["datasets"])


class ValidateIn(Body):
    """A suite (``suite``) or the name of a stored one (``suite_name``: ``name`` or ``name@3``)."""

    suite: dict[str, Any] | None = Field(
        default=None, description="A suite as Suite.to_dict() writes it"
    )
    suite_name: str | None = Field(default=None, min_length=1, max_length=300)
    files: str | None = Field(default=None, max_length=1000, description="a glob in the version")
    save: bool = Field(default=True, description="store the suite and the result")


@router.post(
    "/dataset-versions/{version_id}/validate", dependencies=[Depends(cancel_on_disconnect)]
)
def validate(version_id: str, body: ValidateIn, state: State, who: Editor) -> dict[str, Any]:
    """Check the version against the suite (``save``: store suite and result), return the
    result."""
    from ...data.validation import Suite, load_suite

    if (body.suite is None) == (body.suite_name is None):
        raise InvalidInput("give either suite (a suite document) or suite_name, not both")
    if body.suite is not None:
        suite = Suite.from_dict(body.suite, source="request body")
    else:
        assert body.suite_name is not None
        name, _, number = body.suite_name.partition("@")
        if number and not is_number(number):
            raise InvalidInput(f"suite {body.suite_name!r}: the version after '@' is a number")
        with state.store.db.read() as conn:
            _, _, suite = load_suite(conn, name, int(number) if number else None)
    version = state.datasets.get_by_id(version_id)
    with acting_as(who.user):
        result = state.datasets.validate(version, suite, files=body.files, save=body.save)
    document: dict[str, Any] = result.to_dict()
    return document


@router.get("/dataset-versions/{version_id}/validations")
def validations(version_id: str, state: State, _: Viewer) -> list[dict[str, Any]]:
    """Stored validation results of the version, newest first."""
    version = state.datasets.get_by_id(version_id)
    return list(state.datasets.validation_results(version))
