"""MLflow's REST API (``/api/2.0/mlflow/...``) over Loopwright's own entities."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    return []
