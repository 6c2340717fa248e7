"""Evaluation: datasets of records versioned by content, scorers (code, built-ins, LLM judges)
registered as immutable versions, ``evaluate`` recording evaluation runs, judge agreement.

``client.evaluation`` is the entry point; ``@lw.scorer`` makes scorers of functions.
"""

from __future__ import annotations

from . import builtins
from .entities import (
    Agreement,
    EvalDataset,
    EvalRecord,
    EvaluationResult,
    EvaluationRun,
    Feedback,
    RowResult,
    ScorerVersion,
)
from .judges import Judge
from .scorers import Scorer, scorer
from .targets import PromptTarget

__all__ = [
    "Agreement",
    "EvalDataset",
    "EvalRecord",
    "EvaluationResult",
    "EvaluationRun",
    "Feedback",
    "Judge",
    "PromptTarget",
    "RowResult",
    "Scorer",
    "ScorerVersion",
    "builtins",
    "scorer",
]
