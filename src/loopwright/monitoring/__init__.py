"""Monitoring: drift and data quality on the prediction log against stored references, delayed
ground truth and performance over time, variant comparison, alerts and reports."""

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
from .protocol import Monitoring as Monitoring

__all__ = [
    "Alert",
    "AlertRule",
    "Distribution",
    "DriftResult",
    "LabelImport",
    "Monitor",
    "MonitorRun",
    "Monitoring",
    "Performance",
    "Reference",
    "TestResult",
    "VariantComparison",
    "VariantEstimate",
]
