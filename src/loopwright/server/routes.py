"""Which routers the app serves: the native API (``/api/v1``), MLflow's REST API and the
dashboard (``/ui``)."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["include_routes"]


def include_routes(app: FastAPI) -> None:
    from .api import routers as native_routers
    from .mlflow import routers as mlflow_routers
    from .otlp import router as otlp_router
    from .ui import routers as dashboard_routers

    # MLflow's routes first: its client makes many small calls, each matched in order; the
    # dashboard's pages last.
    for router in (*mlflow_routers(), *native_routers(), otlp_router):
        app.include_router(router)
    from fastapi import Depends

    from .ui._page import dashboard_request

    for router in dashboard_routers():
        app.include_router(router, dependencies=[Depends(dashboard_request)])
