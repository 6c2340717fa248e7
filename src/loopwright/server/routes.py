"""Which routers the app serves: the native API (``/api/v1``) and MLflow's REST API."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["include_routes"]


def include_routes(app: FastAPI) -> None:
    from .api import routers as native_routers
    from .mlflow import routers as mlflow_routers

    # MLflow's routes first: its client makes many small calls, each matched in order.
    for router in (*mlflow_routers(), *native_routers()):
        app.include_router(router)
