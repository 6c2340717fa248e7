"""The run handle returned by ``Client.start_run``: logs to one run and ends it on exit."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .._ids import now_ms
from ..errors import TrackingError
from ._validate import check_key, metric_point
from .entities import Artifact, Metric, Run, RunStatus

if TYPE_CHECKING:
    from ..registry.model_logging import ModelInfo
    from ..registry.packaging.signature import Signature
    from .protocol import Tracking

__all__ = ["ActiveRun", "ModelLogger"]


class ModelLogger(Protocol):
    """Packages a model into a run's artifacts: ``registry.model_logging.log_model``.

    The registry sits above tracking, so the client that makes a run handle passes it in rather
    than tracking importing upward.
    """

    def __call__(
        self,
        tracking: Tracking,
        run_id: str,
        model: Any,
        name: str = ...,
        *,
        input_example: Any = ...,
        signature: Signature | Literal["infer"] | None = ...,
        flavor: str | None = ...,
        code_paths: Sequence[str] | None = ...,
        registered_model_name: str | None = ...,
    ) -> ModelInfo: ...


class ActiveRun:
    """A run being logged to. As a context manager it ends FINISHED, or FAILED on an exception
    (the traceback is stored with the run).

    Example:
        >>> import loopwright as lw
        >>> client = lw.connect(home="lw-doc-active")
        >>> with client.start_run(experiment="demo") as run:
        ...     run.log_metric("loss", 0.25, step=1)
        >>> client.get_run(run.id).status.value
        'FINISHED'
    """

    def __init__(
        self,
        tracking: Tracking,
        run: Run,
        *,
        on_end: Callable[[ActiveRun], None] | None = None,
        model_logger: ModelLogger | None = None,
    ) -> None:
        self._tracking = tracking
        self._model_logger = model_logger
        self._writer = tracking.writer
        self._checked_keys: set[str] = set()
        self._on_end = on_end
        self._before_end: list[Callable[[], None]] = []
        self.id = run.id
        self.experiment_id = run.experiment_id
        self.name = run.name

    def log_param(self, key: str, value: object) -> None:
        self._tracking.log_params(self.id, {key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        self._tracking.log_params(self.id, params)

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        """Buffer one point: an append on the caller's thread; a background thread writes it."""
        if key not in self._checked_keys:
            self._checked_keys.add(check_key("metric", key))
        self._writer.add(
            metric_point(self.id, key, value, step, now_ms() if timestamp is None else timestamp)
        )

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        self._tracking.log_metrics(self.id, metrics, step=step, timestamp=timestamp)

    def log_batch(
        self,
        metrics: Iterable[Metric] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> None:
        """Many points (and params, tags) at once, like MLflow's ``log_batch``."""
        self._tracking.log_batch(self.id, metrics=metrics, params=params, tags=tags)

    def use_dataset(self, dataset_version_id: str, context: str = "training") -> None:
        """Record a dataset version as an input of this run."""
        self._tracking.use_dataset(self.id, dataset_version_id, context)

    def set_tag(self, key: str, value: object) -> None:
        self._tracking.set_tags(self.id, {key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        self._tracking.set_tags(self.id, tags)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        return self._tracking.log_artifact(self.id, local_path, artifact_path)

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        return self._tracking.log_artifacts(self.id, local_dir, artifact_path)

    def log_model(
        self,
        model: object,
        name: str = "model",
        *,
        input_example: object = None,
        signature: Signature | Literal["infer"] | None = "infer",
        flavor: str | None = None,
        code_paths: Sequence[str | os.PathLike[str]] | None = None,
        registered_model_name: str | None = None,
    ) -> ModelInfo:
        """Package ``model`` (no pickle) under the run's artifacts at ``name``.

        The flavor (sklearn, xgboost, lightgbm, onnx, pyfunc) is chosen from the model's type
        unless given. With an ``input_example`` the signature is inferred from it and the
        model's output; ``registered_model_name`` also registers the package as a new version.
        Returns a ``ModelInfo`` whose ``model_uri`` loads the model back.
        """
        if self._model_logger is None:
            raise TrackingError(
                f"run {self.id} cannot log models: this handle was made without a model "
                "logger; start runs with Client.start_run or lw.start_run"
            )
        return self._model_logger(
            self._tracking,
            self.id,
            model,
            name,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            code_paths=[os.fspath(p) for p in code_paths] if code_paths else None,
            registered_model_name=registered_model_name,
        )

    def end(self, status: RunStatus = RunStatus.FINISHED, *, error: str | None = None) -> None:
        """Flush the run's metrics and record its end; it stops being the active run."""
        hooks, self._before_end = self._before_end, []
        for hook in hooks:  # e.g. stop the system-metrics sampler so its last sample is kept
            hook()
        try:
            self._tracking.end_run(self.id, status, error=error)
        finally:
            if self._on_end is not None:
                self._on_end(self)

    def call_before_end(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when the run ends, before its final flush (e.g. to stop a sampler)."""
        self._before_end.append(hook)

    def info(self) -> Run:
        """The run as stored now."""
        return self._tracking.get_run(self.id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED, error="interrupted (KeyboardInterrupt)")
        else:
            self.end(RunStatus.FAILED, error="".join(traceback.format_exception(exc_type, exc, tb)))
