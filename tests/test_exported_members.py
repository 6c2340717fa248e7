"""The public API is a contract: ``__all__`` lists exactly what users may import."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import loopwright
import loopwright.data
import loopwright.errors
import loopwright.features
import loopwright.registry
import loopwright.serving
import loopwright.tracking

# Besides these, every error class of loopwright.errors is exported at the top level.
EXPECTED_TOP_LEVEL = [
    "ActiveRun",
    "Client",
    "Experiment",
    "Metric",
    "Run",
    "RunStatus",
    "__version__",
    "active_run",
    "autolog",
    "connect",
    "end_run",
    "evaluate_gate",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "pipeline",
    "scorer",
    "set_tag",
    "set_tags",
    "span",
    "start_run",
    "step",
    "trace",
]
EXPECTED_DATA = [
    "Dataset",
    "DatasetDiff",
    "DatasetService",
    "DatasetVersion",
    "Datasets",
    "Expectation",
    "ExpectationResult",
    "FileEntry",
    "Pointer",
    "Suite",
    "ValidationResult",
    "WorkspaceStatus",
]
EXPECTED_TRACKING = [
    "ActiveRun",
    "Artifact",
    "Experiment",
    "Metric",
    "Run",
    "RunList",
    "RunStatus",
    "TrackingService",
]
EXPECTED_REGISTRY = [
    "AliasChange",
    "ApprovalDecision",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalRule",
    "ColumnSpec",
    "LoadedModel",
    "ModelCard",
    "ModelInfo",
    "ModelVersion",
    "PackageManifest",
    "RegisteredModel",
    "RegistryService",
    "Signature",
    "Stage",
    "infer_signature",
    "load_package",
    "save_model",
]

EXPECTED_FEATURES = [
    "ApplyPlan",
    "DatasetSource",
    "Entity",
    "FeatureDefinition",
    "FeatureService",
    "FeatureView",
    "Features",
    "Field",
    "FileSource",
    "Freshness",
    "Materialization",
    "OnDemandFeatureView",
    "OnlineFeatures",
    "RequestSource",
    "SkewReport",
    "SqlSource",
    "TrainingSet",
    "on_demand_feature_view",
    "to_specs",
]


def test_features_all_is_exact_and_resolves() -> None:
    assert loopwright.features.__all__ == EXPECTED_FEATURES
    for name in EXPECTED_FEATURES:
        value = getattr(loopwright.features, name)
        assert value.__module__.startswith("loopwright.features.")
        assert value.__name__ == name


def test_registry_all_is_exact_and_resolves() -> None:
    assert loopwright.registry.__all__ == EXPECTED_REGISTRY
    for name in EXPECTED_REGISTRY:
        value = getattr(loopwright.registry, name)
        assert value.__module__.startswith("loopwright.registry.")
        assert value.__name__ == name
    with pytest.raises(AttributeError, match="nope"):
        loopwright.registry.nope  # noqa: B018


def _top_level() -> list[str]:
    return sorted([*EXPECTED_TOP_LEVEL, *loopwright.errors.__all__])


def test_top_level_all_is_exact() -> None:
    assert loopwright.__all__ == _top_level()


def test_every_error_class_is_exported_at_the_top_level() -> None:
    common = ["LoopwrightError", "NotFound", "InvalidInput", "Conflict", "PermissionDenied"]
    assert set(common) <= set(loopwright.errors.__all__)
    for name in loopwright.errors.__all__:
        error = getattr(loopwright, name)
        assert error is getattr(loopwright.errors, name)
        assert issubclass(error, loopwright.LoopwrightError)
    assert {"ServingError", "ModelFailed", "Overloaded"} <= set(loopwright.__all__)


@pytest.mark.parametrize("name", _top_level())
def test_every_top_level_name_resolves(name: str) -> None:
    value = getattr(loopwright, name)
    if name != "__version__":
        assert value.__module__.startswith("loopwright.")
        assert value.__name__ == name


def test_top_level_names_are_the_real_objects() -> None:
    from loopwright.client import Client, connect
    from loopwright.errors import LoopwrightError

    assert loopwright.Client is Client
    assert loopwright.connect is connect
    assert loopwright.LoopwrightError is LoopwrightError
    assert loopwright.__version__ == importlib.metadata.version("loopwright")


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from loopwright import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == _top_level()


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        loopwright.no_such_thing  # noqa: B018


def test_lazy_names_resolve_in_a_fresh_interpreter() -> None:
    code = (
        "import loopwright\n"
        "for name in loopwright.__all__: getattr(loopwright, name)\n"
        "from loopwright import Client, connect\n"
        "print(Client.__module__, connect.__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["loopwright.client", "loopwright.client"]


def test_tracking_all_is_exact_and_resolves() -> None:
    assert loopwright.tracking.__all__ == EXPECTED_TRACKING
    for name in loopwright.tracking.__all__:
        value = getattr(loopwright.tracking, name)
        assert value.__module__.startswith("loopwright.tracking.")
        assert value.__name__ == name


def test_data_all_is_exact_and_resolves() -> None:
    assert loopwright.data.__all__ == EXPECTED_DATA
    for name in EXPECTED_DATA:
        value = getattr(loopwright.data, name)
        assert value.__module__.startswith("loopwright.data.")
        assert value.__name__ == name
    with pytest.raises(AttributeError, match="nope"):
        loopwright.data.nope  # noqa: B018


EXPECTED_SERVING = [
    "BatchResult",
    "Compaction",
    "Deployment",
    "DeploymentRevision",
    "DeploymentService",
    "Deployments",
    "LiveStats",
    "LoggedDeployment",
    "ModelRepository",
    "ModelSource",
    "PredictionLog",
    "PredictionRecord",
    "PredictionService",
    "Predictions",
    "Pruning",
    "ServeConfig",
    "ServedModel",
    "ServingInstance",
    "ServingMetrics",
    "Variant",
    "VariantStats",
    "create_app",
    "live_stats",
    "load_source",
    "predict_batch",
    "resolve_source",
]


def test_serving_all_is_exact_and_resolves() -> None:
    assert loopwright.serving.__all__ == EXPECTED_SERVING
    for name in EXPECTED_SERVING:
        value = getattr(loopwright.serving, name)
        assert value.__module__.startswith("loopwright.serving.")
        assert value.__name__ == name
    with pytest.raises(AttributeError, match="nope"):
        loopwright.serving.nope  # noqa: B018


EXPECTED_GATEWAY = [
    "Decision",
    "Gateway",
    "GatewayRoute",
    "GuardrailSpec",
    "Limits",
    "Price",
    "RouteConfig",
    "SecretInfo",
    "Target",
    "UsageRecord",
    "UsageSummary",
    "Verdict",
    "register_check",
]


def test_gateway_all_is_exact_and_resolves() -> None:
    import loopwright.gateway

    assert loopwright.gateway.__all__ == EXPECTED_GATEWAY
    for name in EXPECTED_GATEWAY:
        value = getattr(loopwright.gateway, name)
        assert value.__module__.startswith("loopwright.gateway.")
        assert value.__name__ == name


EXPECTED_MONITORING = [
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


def test_monitoring_all_is_exact_and_resolves() -> None:
    import loopwright.monitoring

    assert loopwright.monitoring.__all__ == EXPECTED_MONITORING
    for name in EXPECTED_MONITORING:
        value = getattr(loopwright.monitoring, name)
        assert value.__module__.startswith("loopwright.monitoring.")
        assert value.__name__ == name
