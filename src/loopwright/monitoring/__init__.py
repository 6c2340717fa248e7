"""Monitoring: drift and data quality on the prediction log against stored references, delayed
ground truth and performance over time, variant comparison, alerts and reports; and monitors of
LLM traffic (traces): online scoring, drift against the approved baseline, alerts that act."""

from __future__ import annotations

from .entities import (
    Alert as Alert,
)
from .entities import (
    AlertRule as AlertRule,
)
from .entities import (
    Distribution as Distribution,
)
from .entities import (
    DriftResult as DriftResult,
)
from .entities import (
    LabelImport as LabelImport,
)
from .entities import (
    Monitor as Monitor,
)
from .entities import (
    MonitorRun as MonitorRun,
)
from .entities import (
    Performance as Performance,
)
from .entities import (
    Reference as Reference,
)
from .entities import (
    TestResult as TestResult,
)
from .entities import (
    VariantComparison as VariantComparison,
)
from .entities import (
    VariantEstimate as VariantEstimate,
)
from .llm_entities import (
    ActionOutcome as ActionOutcome,
)
from .llm_entities import (
    AlertAction as AlertAction,
)
from .llm_entities import (
    ScoringProgress as ScoringProgress,
)
from .llm_entities import (
    TraceMonitor as TraceMonitor,
)
from .llm_entities import (
    TraceMonitorRun as TraceMonitorRun,
)
from .llm_entities import (
    TraceSelection as TraceSelection,
)
from .protocol import Monitoring as Monitoring

__all__ = [
    "ActionOutcome",
    "Alert",
    "AlertAction",
    "AlertRule",
    "Distribution",
    "DriftResult",
    "LabelImport",
    "Monitor",
    "MonitorRun",
    "Monitoring",
    "Performance",
    "Reference",
    "ScoringProgress",
    "TestResult",
    "TraceMonitor",
    "TraceMonitorRun",
    "TraceSelection",
    "VariantComparison",
    "VariantEstimate",
]
