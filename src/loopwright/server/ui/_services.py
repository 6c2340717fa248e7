"""The server's own services for one caller, shaped like a :class:`~loopwright.client.Client`
for the functions that walk a client's services (``loop.lineage.lineage``, the registry's card
and SBOM builders): built as the API's handlers build them, on the server's stores, so no second
connection to the stores is opened and every change acts as the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ...client import Client
    from ...governance.tokens import Identity
    from .._state import ServerState

__all__ = ["caller_client"]


def caller_client(state: ServerState, caller: Identity) -> Client:
    """A client-shaped view of the server's services acting for ``caller`` (the functions that
    take it read only the services they need; each is made on first use)."""
    return cast("Client", _CallerServices(state, caller))


class _CallerServices:
    """The services :func:`lineage` reads, on the server's stores and acting for the caller
    (built lazily: most walks touch a few of them)."""

    def __init__(self, state: ServerState, caller: Identity) -> None:
        self._state = state
        self._caller = caller
        self._made: dict[str, Any] = {}

    def _once(self, name: str, make: Any) -> Any:
        if name not in self._made:
            self._made[name] = make()
        return self._made[name]

    @property
    def tracking(self) -> Any:
        return self._state.tracking

    @property
    def datasets(self) -> Any:
        return self._state.datasets

    @property
    def registry(self) -> Any:
        return self._once("registry", lambda: self._state.registry(self._caller))

    @property
    def deployments(self) -> Any:
        return self._once("deployments", lambda: self._state.deployments(self._caller))

    @property
    def features(self) -> Any:
        return self._state.features()

    @property
    def prediction_log(self) -> Any:
        from ...serving.prediction_log import log_location
        from ...serving.predictions import PredictionService

        return self._once(
            "prediction_log", lambda: PredictionService(log_location(self._state.settings))
        )

    @property
    def monitoring(self) -> Any:
        from ...monitoring.service import MonitoringService

        return self._once(
            "monitoring",
            lambda: MonitoringService(
                self._state.store, self.prediction_log, actor=self._caller.user
            ),
        )

    @property
    def pipelines(self) -> Any:
        from ...pipelines.service import PipelineService

        return self._once(
            "pipelines", lambda: PipelineService(self._state.store, tracking=self._state.tracking)
        )

    @property
    def schedules(self) -> Any:
        from ...loop.schedules import ScheduleService

        return self._once(
            "schedules", lambda: ScheduleService(self._state.store, actor=self._caller.user)
        )

    @property
    def gates(self) -> Any:
        from ...loop._gate_records import GateService

        return self._once("gates", lambda: GateService(self._state.store, actor=self._caller.user))

    # The LLM records a lineage walk from a trace or prompt version reads (loop/_lineage_llm).
    @property
    def tracing(self) -> Any:
        from ...tracing.service import TracingService

        reader = (self._caller.user, self._caller.role)  # a viewer: their own gateway traces
        return self._once("tracing", lambda: TracingService(self._state.store, reader=reader))

    @property
    def prompts(self) -> Any:
        from ...prompts.service import PromptService

        return self._once(
            "prompts", lambda: PromptService(self._state.store, actor=self._caller.user)
        )

    @property
    def gateway(self) -> Any:
        from ...gateway.service import GatewayService

        return self._once(
            "gateway", lambda: GatewayService(self._state.store, actor=self._caller.user)
        )

    @property
    def evaluation(self) -> Any:
        from ...evaluation.service import EvaluationService

        # Its dataset part opens a stat cache only when data is added; lineage only reads.
        return self._once(
            "evaluation",
            lambda: EvaluationService(self._state.store, tracking=self._state.tracking),
        )

    @property
    def loops(self) -> Any:
        from ...loop.service import LoopService

        return self._once("loops", lambda: LoopService(self._state.store, actor=self._caller.user))
