"""``/api/v1/me``: who the server takes the caller for (clients show it; tests check tokens)."""

from __future__ import annotations

from fastapi import APIRouter

from ._deps import PREFIX, Viewer
from ._schemas import IdentityOut

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["identity"])


@router.get("/me")
def who_am_i(identity: Viewer) -> IdentityOut:
    """The caller's user name and role."""
    return IdentityOut.of(identity)
