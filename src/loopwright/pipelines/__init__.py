"""Pipelines: plain Python steps composed by calling them, cached across runs, resumable.

Steps are functions decorated with ``@step``; a ``@pipeline`` function calls them. Each pipeline
run is a tracked run and each step call a nested run whose outputs are stored as artifacts by
type (materializers), so a later run with the same code, parameters and inputs reuses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# Imported at once, not lazily: ``step`` and ``pipeline`` are also the names of their modules,
# and a lazy name would be shadowed by the module as soon as anything imported it.
from .pipeline import pipeline as pipeline
from .step import step as step

if TYPE_CHECKING:
    from .entities import ArtifactRef as ArtifactRef
    from .entities import PipelineRun as PipelineRun
    from .entities import StepRun as StepRun
    from .materializers import register_materializer as register_materializer
    from .materializers import unregister_materializer as unregister_materializer
    from .pipeline import Pipeline as Pipeline
    from .pipeline import load_output as load_output
    from .pipeline import load_pipeline as load_pipeline
    from .pipeline import load_result as load_result
    from .pipeline import resume as resume
    from .step import Step as Step
    from .sweeps import SweepPoint as SweepPoint

_LAZY = {
    "ArtifactRef": "entities",
    "PipelineRun": "entities",
    "StepRun": "entities",
    "register_materializer": "materializers",
    "unregister_materializer": "materializers",
    "Pipeline": "pipeline",
    "load_output": "pipeline",
    "load_pipeline": "pipeline",
    "load_result": "pipeline",
    "resume": "pipeline",
    "Step": "step",
    "SweepPoint": "sweeps",
}
__all__ = sorted([*_LAZY, "pipeline", "step"])

__getattr__ = lazy_exports(__name__, _LAZY, globals())
