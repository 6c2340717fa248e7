"""The native REST API under ``/api/v1``: one router per resource.

Every route declares who may call it by taking the caller as ``Viewer``, ``Editor``,
``Approver`` or ``Admin`` (see ``_deps``); bodies are the pydantic models of ``_schemas``.
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    from . import (
        approvals,
        artifacts,
        audit,
        datasets,
        deployments,
        evaluation,
        experiments,
        features,
        gates,
        gateway,
        llm_monitors,
        loops,
        me,
        models,
        monitoring,
        pipelines,
        predictions,
        prompts,
        runs,
        schedules,
        traces,
        users,
        validation,
        versions,
    )

    return [
        me.router,
        experiments.router,
        runs.router,
        artifacts.router,
        models.router,
        versions.router,
        approvals.router,
        audit.router,
        datasets.router,
        validation.router,
        users.router,
        deployments.router,
        predictions.router,
        monitoring.router,
        llm_monitors.router,
        pipelines.router,
        prompts.router,
        schedules.router,
        gates.router,
        loops.router,
        features.router,
        evaluation.router,
        gateway.router,
        traces.router,
    ]
