"""Every capability's protocol, its embedded service and its remote backend have the same
public surface, signature for signature (names, parameter kinds, defaults, annotations, return
annotations), so a method added on one side only, or with another default, fails here.

The shared behavioural suite is ``tests/test_public_api.py``; this file is the static half.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from loopwright._backend import Backend, Embedded
from loopwright.data.protocol import Datasets
from loopwright.data.service import DatasetService
from loopwright.evaluation.protocol import Evaluation
from loopwright.evaluation.service import EvaluationService
from loopwright.features.protocol import Features
from loopwright.features.service import FeatureStore
from loopwright.gateway.protocol import Gateway
from loopwright.gateway.service import GatewayService
from loopwright.governance.audit import AuditLog
from loopwright.governance.protocol import Audit, Users
from loopwright.governance.users import UserService
from loopwright.loop._gate_records import GateService
from loopwright.loop.protocol import Gates, Loops, Schedules
from loopwright.loop.schedules import ScheduleService
from loopwright.loop.service import LoopService
from loopwright.monitoring.protocol import Monitoring
from loopwright.monitoring.service import MonitoringService
from loopwright.pipelines.protocol import Pipelines
from loopwright.pipelines.service import PipelineService
from loopwright.prompts.protocol import Prompts
from loopwright.prompts.service import PromptService
from loopwright.registry.protocol import Registry
from loopwright.registry.service import RegistryService
from loopwright.remote import Remote
from loopwright.remote.audit import RemoteAudit
from loopwright.remote.datasets import RemoteDatasets
from loopwright.remote.deployments import RemoteDeployments
from loopwright.remote.evaluation import RemoteEvaluation
from loopwright.remote.features import RemoteFeatures
from loopwright.remote.gates import RemoteGates
from loopwright.remote.gateway import RemoteGateway
from loopwright.remote.loops import RemoteLoops
from loopwright.remote.monitoring import RemoteMonitoring
from loopwright.remote.pipelines import RemotePipelines
from loopwright.remote.predictions import RemotePredictions
from loopwright.remote.prompts import RemotePrompts
from loopwright.remote.registry import RemoteRegistry
from loopwright.remote.schedules import RemoteSchedules
from loopwright.remote.tracing import RemoteTracing
from loopwright.remote.tracking import RemoteTracking
from loopwright.remote.users import RemoteUsers
from loopwright.serving._prediction_protocol import Predictions
from loopwright.serving.deployments import DeploymentService
from loopwright.serving.predictions import PredictionService
from loopwright.serving.protocol import Deployments
from loopwright.tracing.protocol import Tracing
from loopwright.tracing.service import TracingService
from loopwright.tracking.protocol import Tracking
from loopwright.tracking.service import TrackingService


@dataclass(frozen=True)
class Capability:
    name: str
    protocol: type
    embedded: type
    remote: type
    local_only: frozenset[str] = frozenset()  # embedded-only, with the reason in LOCAL_ONLY


# What works on a local store only and so has no remote counterpart: the stat cache of files
# already hashed on this machine, and recording versions pulled from another store.
LOCAL_ONLY = {"stat_cache", "find_version", "import_version"}
# The embedded log's folder/URL and its Arrow reader (monitoring reads windows through DuckDB
# there); a remote log is read over HTTP only.
LOCAL_LOG_ONLY = frozenset({"location", "read_table"})
# What the server's MLflow trace routes use on the store they hold (StartTraceV3's info without
# spans, batchGet, a page's assessments); a remote client goes through the native API instead.
TRACING_SERVER_ONLY = frozenset(
    {"record_info", "get_many", "assessments_of", "correlation", "metrics"}
)

CAPABILITIES = [
    Capability("tracking", Tracking, TrackingService, RemoteTracking),
    Capability("datasets", Datasets, DatasetService, RemoteDatasets, frozenset(LOCAL_ONLY)),
    Capability("registry", Registry, RegistryService, RemoteRegistry),
    Capability("users", Users, UserService, RemoteUsers),
    Capability("audit", Audit, AuditLog, RemoteAudit),
    Capability("deployments", Deployments, DeploymentService, RemoteDeployments),
    Capability("prediction_log", Predictions, PredictionService, RemotePredictions, LOCAL_LOG_ONLY),
    Capability("monitoring", Monitoring, MonitoringService, RemoteMonitoring),
    Capability("pipelines", Pipelines, PipelineService, RemotePipelines),
    Capability("prompts", Prompts, PromptService, RemotePrompts),
    Capability("gates", Gates, GateService, RemoteGates),
    Capability("schedules", Schedules, ScheduleService, RemoteSchedules),
    Capability("loops", Loops, LoopService, RemoteLoops),
    Capability("features", Features, FeatureStore, RemoteFeatures),
    Capability("tracing", Tracing, TracingService, RemoteTracing, TRACING_SERVER_ONLY),
    Capability("gateway", Gateway, GatewayService, RemoteGateway),
    Capability("evaluation", Evaluation, EvaluationService, RemoteEvaluation),
]


def _public_names(cls: type) -> set[str]:
    """Public methods and properties declared on ``cls`` or its bases (not ``object``'s)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass in (object, Any) or klass.__module__ == "typing":
            continue
        names.update(n for n in vars(klass) if not n.startswith("_"))
    return names


def _init_attributes(cls: type) -> set[str]:
    """Public attributes that ``__init__`` (of ``cls`` or a base) assigns to ``self``."""
    found: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or not inspect.isfunction(init):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        for node in ast.walk(tree):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and not target.attr.startswith("_")
                ):
                    found.add(target.attr)
    return found


def _member(cls: type, name: str) -> Any:
    return inspect.getattr_static(cls, name)


def _shape(member: Any) -> tuple[str, Any]:
    """What must agree: ``("property", return annotation)`` or ``("method", parameters)``."""
    if isinstance(member, property):
        assert member.fget is not None
        return ("property", inspect.signature(member.fget).return_annotation)
    if isinstance(member, staticmethod | classmethod):
        member = member.__func__
    signature = inspect.signature(member)
    params = [(p.name, p.kind.name, p.default, p.annotation) for p in signature.parameters.values()]
    return ("method", (params, signature.return_annotation))


def _text(member: Any) -> str:
    if isinstance(member, property):
        assert member.fget is not None
        return f"property -> {inspect.signature(member.fget).return_annotation}"
    if isinstance(member, staticmethod | classmethod):
        member = member.__func__
    return str(inspect.signature(member))


def differences(protocol: type, impl: type, local_only: frozenset[str] = frozenset()) -> list[str]:
    """How ``impl`` departs from ``protocol``: missing, extra or differently shaped members."""
    wanted = _public_names(protocol)
    offered = _public_names(impl)
    problems = []
    for name in sorted(wanted):
        if name not in offered:
            if name in _init_attributes(impl):
                continue  # an attribute set in __init__ (e.g. ``writer``) stands for a property
            problems.append(f"{impl.__name__} lacks {name}")
            continue
        theirs, ours = _member(protocol, name), _member(impl, name)
        if _shape(theirs) != _shape(ours):
            problems.append(f"{impl.__name__}.{name}: {_text(ours)} != protocol {_text(theirs)}")
    for name in sorted(offered - wanted - local_only):
        problems.append(f"{impl.__name__}.{name} is public but not in {protocol.__name__}")
    return problems


def _all_pairs() -> Iterator[tuple[str, type, type, frozenset[str]]]:
    for cap in CAPABILITIES:
        yield f"{cap.name}-embedded", cap.protocol, cap.embedded, cap.local_only
        yield f"{cap.name}-remote", cap.protocol, cap.remote, frozenset()


@pytest.mark.parametrize(
    ("protocol", "impl", "local_only"),
    [pytest.param(p, i, lo, id=name) for name, p, i, lo in _all_pairs()],
)
def test_each_backend_has_the_protocols_full_signatures(
    protocol: type, impl: type, local_only: frozenset[str]
) -> None:
    assert differences(protocol, impl, local_only) == []


@pytest.mark.parametrize("cap", CAPABILITIES, ids=lambda c: c.name)
def test_embedded_and_remote_agree_with_each_other(cap: Capability) -> None:
    shared = _public_names(cap.protocol)
    for name in shared & _public_names(cap.embedded) & _public_names(cap.remote):
        assert _shape(_member(cap.embedded, name)) == _shape(_member(cap.remote, name)), name


def test_local_only_members_say_so_remotely() -> None:
    from loopwright.remote._store import NotOnRemote

    remote = RemoteDatasets.__new__(RemoteDatasets)  # no server needed to ask
    for name in sorted(LOCAL_ONLY):
        assert hasattr(DatasetService, name), f"LOCAL_ONLY names {name}, which does not exist"
        with pytest.raises(NotOnRemote, match="local store"):
            getattr(remote, name)
    with pytest.raises(AttributeError):
        remote.no_such_method  # noqa: B018


def test_both_backends_provide_every_capability() -> None:
    # Each backend's services are typed as its own classes (checked above against the
    # protocols); mypy checks that both are Backends where the client chooses one.
    assert _public_names(Embedded) == _public_names(Backend)
    assert _public_names(Remote) == _public_names(Backend)
    served = {c.name for c in CAPABILITIES}
    assert served | {"store", "close"} == _public_names(Backend)


class _Partial:
    """A backend that forgot a method, got a default wrong and grew an extra one."""

    def get_run(self, run_id: str) -> Any: ...

    def list_runs(self, *, experiment: str | None = None, limit: int = 10) -> Any: ...

    def extra(self) -> None: ...


def test_the_comparison_catches_missing_changed_and_extra_methods() -> None:
    class Small:  # a tiny protocol for the check
        def get_run(self, run_id: str) -> Any: ...

        def list_runs(self, *, experiment: str | None = None, limit: int = 100) -> Any: ...

        def delete_tag(self, run_id: str, key: str) -> None: ...

    found = differences(Small, _Partial)
    assert "_Partial lacks delete_tag" in found
    assert any(p.startswith("_Partial.list_runs:") for p in found)
    assert "_Partial.extra is public but not in Small" in found
    assert not any("get_run" in p for p in found)


def test_signatures_include_defaults_and_annotations() -> None:
    def before(a: int, *, b: str = "x") -> int:
        return a

    def renamed(a: int, *, c: str = "x") -> int:
        return a

    def other_default(a: int, *, b: str = "y") -> int:
        return a

    def other_return(a: int, *, b: str = "x") -> str:
        return b

    def positional(a: int, b: str = "x") -> int:
        return a

    shapes: list[Callable[..., Any]] = [renamed, other_default, other_return, positional]
    assert all(_shape(f) != _shape(before) for f in shapes)
