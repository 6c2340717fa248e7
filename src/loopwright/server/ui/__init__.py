"""The web dashboard's routes: server-rendered pages under ``/ui`` (``/`` redirects there).

One module per section (``runs``, ``models``, ...), each with an ``APIRouter`` named ``router``
whose routes declare their access rule like the API's (``Viewer``, ``Approver``; the session
cookie authenticates them); ``session`` holds login, logout and the static assets. The page
machinery (templates, CSRF, security headers) is in ``_page``; errors become pages in
``_errors``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = ["routers"]

# The sections, in the navigation's order; each module defines ``router``.
SECTIONS = (
    "session",
    "home",
    "runs",
    "datasets",
    "models",
    "approvals",
    "deployments",
    "monitoring",
    "loops",
    "pipelines",
    "prompts",
    "traces",
    "gateway",
    "evaluations",
    "lineage",
    "audit",
)


def routers() -> list[APIRouter]:
    return [import_module(f"{__name__}.{name}").router for name in SECTIONS]
