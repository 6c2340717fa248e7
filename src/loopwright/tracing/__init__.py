"""Tracing for LLM applications: spans and traces recorded into the store, never dropped
silently.

``@lw.trace`` and ``lw.span(...)`` (:mod:`.sdk`) build spans; :class:`.exporter.TraceExporter`
batches them to a ``record`` callable (the embedded service or a server) with a bounded queue
and backpressure; the server also ingests OTLP/HTTP and MLflow's trace API.
"""

from .entities import Assessment as Assessment
from .entities import Span as Span
from .entities import SpanEvent as SpanEvent
from .entities import TokenUsage as TokenUsage
from .entities import Trace as Trace
from .entities import TraceLinks as TraceLinks
from .entities import TracePage as TracePage
from .redaction import mask_secrets as mask_secrets
from .redaction import set_redactor as set_redactor

__all__ = [
    "Assessment",
    "Span",
    "SpanEvent",
    "TokenUsage",
    "Trace",
    "TraceLinks",
    "TracePage",
    "mask_secrets",
    "set_redactor",
]
